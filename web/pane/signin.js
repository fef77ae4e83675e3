// signin.js - the last page of the pane's sign-in (in an Office dialog):
// hands what the gateway put in <meta name="halo-result"> (a pane session,
// or an error) to the pane with Office.context.ui.messageParent. The
// session never appears in a URL. No inline script: the page's CSP.
'use strict';
(function () {
  var meta = document.querySelector('meta[name="halo-result"]');
  var result = meta ? meta.getAttribute('content') : '{"error":"internal"}';
  function send() {
    try {
      Office.context.ui.messageParent(result);
    } catch (e) {
      // opened outside Outlook: nothing to hand it to
      var p = document.getElementById('message');
      if (p) p.textContent += ' (Open the sign-in from the Outlook pane.)';
    }
  }
  if (typeof Office !== 'undefined' && Office.onReady) Office.onReady(send);
  else send();
})();
