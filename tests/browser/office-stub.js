// office-stub.js - a small stand-in for Microsoft's office.js, served by the
// pane test in place of the CDN script (Playwright routing). It gives the
// pane what Outlook would: Office.onReady, context.mailbox.item with
// internetMessageId, from, subject, getAllInternetHeadersAsync,
// body.getAsync and getAsFileAsync (Mailbox 1.14), userProfile,
// requirements, the ItemChanged event, and the Dialog API
// (context.ui.displayDialogAsync opens a real popup window; in that window
// context.ui.messageParent hands the message back to the pane). The test
// configures it through window.__haloStub (set before the page loads) and
// switches items with window.__haloSwitch.
'use strict';
(function () {
  var cfg = window.__haloStub || {};
  var handlers = [];
  var ok = function (value) { return { status: 'succeeded', value: value, asyncContext: null }; };

  function makeItem(msg) {
    if (!msg) return null;
    var item = {
      internetMessageId: msg.messageId, itemType: 'message',
      subject: msg.subject || 'a message',
      from: { emailAddress: msg.from || 'ann@acme.example', displayName: msg.fromName || 'Ann Acme' },
      body: {
        getAsync: function (coercion, options, cb) {
          if (typeof options === 'function') cb = options;
          setTimeout(function () { cb(ok(msg.text || 'Hello,\nthe laptop will not boot.')); }, 5);
        },
      },
    };
    if (!cfg.noHeaders) {
      item.getAllInternetHeadersAsync = function (options, cb) {
        if (typeof options === 'function') cb = options;
        setTimeout(function () {
          cb({ status: 'succeeded', value: msg.headers, asyncContext: null });
        }, 5);
      };
      item.getAsFileAsync = function (options, cb) {
        if (typeof options === 'function') cb = options;
        var mime = msg.headers + (msg.text || 'Hello,\r\nthe laptop will not boot.\r\n');
        setTimeout(function () { cb(ok(btoa(unescape(encodeURIComponent(mime))))); }, 5);
      };
    }
    return item;
  }

  // The Dialog API: a popup window; the page in it answers through
  // messageParent, which reaches the opener's __haloDialogMessage.
  function displayDialogAsync(url, options, cb) {
    if (typeof options === 'function') cb = options;
    var win = window.open(url, 'halo-dialog', 'popup,width=480,height=640');
    if (!win) {
      setTimeout(function () { cb({ status: 'failed', error: { code: 12009, message: 'The dialog was blocked' } }); }, 5);
      return;
    }
    var on = {};
    var dialog = {
      addEventHandler: function (type, fn) { on[type] = fn; },
      close: function () { try { win.close(); } catch (e) { /* gone */ } },
    };
    window.__haloDialogMessage = function (message) {
      if (on.dialogMessageReceived) on.dialogMessageReceived({ message: message, origin: window.location.origin });
    };
    window.__haloDialogOpened = (window.__haloDialogOpened || 0) + 1;
    setTimeout(function () { cb(ok(dialog)); }, 5);
  }

  window.Office = {
    AsyncResultStatus: { Succeeded: 'succeeded', Failed: 'failed' },
    EventType: { ItemChanged: 'olkItemSelectedChanged', DialogMessageReceived: 'dialogMessageReceived',
      DialogEventReceived: 'dialogEventReceived' },
    CoercionType: { Text: 'text', Html: 'html' },
    HostType: { Outlook: 'Outlook' },
    context: {
      mailbox: {
        item: makeItem(cfg.message),
        userProfile: { emailAddress: cfg.user || 'alice@msp.example', displayName: 'Alice Agent' },
        addHandlerAsync: function (type, fn, cb) {
          if (type === 'olkItemSelectedChanged') handlers.push(fn);
          if (cb) cb({ status: 'succeeded' });
        },
      },
      ui: {
        displayDialogAsync: displayDialogAsync,
        messageParent: function (message) {
          if (window.opener && window.opener.__haloDialogMessage) window.opener.__haloDialogMessage(message);
        },
      },
      requirements: {
        isSetSupported: function (name, version) {
          if (name === 'DialogApi') return true;
          if (name !== 'Mailbox') return false;
          // "1.8" < "1.13": compare the minor numbers
          var minor = parseInt(String(version || '1.0').split('.')[1], 10) || 0;
          return minor <= (cfg.noHeaders ? 5 : 14);
        },
      },
      officeTheme: cfg.officeTheme,
    },
    onReady: function (cb) {
      var info = { host: 'Outlook', platform: 'OfficeOnline' };
      return new Promise(function (resolve) {
        setTimeout(function () { if (cb) cb(info); resolve(info); }, 5);
      });
    },
  };

  // the test's hand on the selection: a new item, then ItemChanged
  window.__haloSwitch = function (msg) {
    window.Office.context.mailbox.item = makeItem(msg);
    handlers.forEach(function (fn) { fn({ type: 'olkItemSelectedChanged' }); });
    return handlers.length;
  };
})();
