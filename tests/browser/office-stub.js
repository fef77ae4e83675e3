// office-stub.js - a small stand-in for Microsoft's office.js, served by the
// pane test in place of the CDN script (Playwright routing). It gives the
// pane what Outlook would: Office.onReady, context.mailbox.item with
// internetMessageId and getAllInternetHeadersAsync, requirements, the
// ItemChanged event. The test configures it through window.__haloStub
// (set before the page loads) and switches items with window.__haloSwitch.
'use strict';
(function () {
  var cfg = window.__haloStub || {};
  var handlers = [];

  function makeItem(msg) {
    if (!msg) return null;
    var item = { internetMessageId: msg.messageId, itemType: 'message' };
    if (!cfg.noHeaders) {
      item.getAllInternetHeadersAsync = function (options, cb) {
        if (typeof options === 'function') cb = options;
        setTimeout(function () {
          cb({ status: 'succeeded', value: msg.headers, asyncContext: null });
        }, 5);
      };
    }
    return item;
  }

  window.Office = {
    AsyncResultStatus: { Succeeded: 'succeeded', Failed: 'failed' },
    EventType: { ItemChanged: 'olkItemSelectedChanged' },
    HostType: { Outlook: 'Outlook' },
    context: {
      mailbox: {
        item: makeItem(cfg.message),
        addHandlerAsync: function (type, fn, cb) {
          if (type === 'olkItemSelectedChanged') handlers.push(fn);
          if (cb) cb({ status: 'succeeded' });
        },
      },
      requirements: {
        isSetSupported: function (name, version) {
          if (name !== 'Mailbox') return false;
          // "1.8" < "1.13": compare the minor numbers
          var minor = parseInt(String(version || '1.0').split('.')[1], 10) || 0;
          return minor <= (cfg.noHeaders ? 5 : 13);
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
