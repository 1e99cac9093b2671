// The demo shop page (shop.html): stands in for a shop's own site. Its
// "backend" is chatd's loopback demo backend: it sets the demo up, gets a
// chat token for the demo customer chosen (?as=alice, bob or carol), and
// embeds the widget with one script tag, as a real shop's page would with
// a token its own backend issued (docs/demo.md).

import { demoCall, h } from './widget/common.ts';
import type { DemoSetup, DemoToken } from './widget/common.ts';

async function main(): Promise<void> {
  const out = document.getElementById('embed')!;
  const who = document.getElementById('who') as HTMLSelectElement;
  try {
    const setup = await demoCall<DemoSetup>('setup');
    const customers = setup.users.filter((u) => u.role === 'user');
    const as = new URLSearchParams(location.search).get('as') || customers[0].uid;
    who.replaceChildren(...customers.map((u) => h('option', { value: u.uid, selected: u.uid === as }, u.nickname)));
    who.onchange = () => { location.search = '?as=' + encodeURIComponent(who.value); };
    document.getElementById('shop-name')!.textContent = setup.shop.name;
    const t = await demoCall<DemoToken>('token', { uid: as });
    const tag = h('script', {
      src: 'widget.js', 'data-app': t.app, 'data-shop': setup.shop.id, 'data-token': t.token, 'data-ws': t.ws_url,
      'data-title': setup.shop.name,
    });
    out.textContent = tag.outerHTML.replace(/data-token="[^"]*"/, 'data-token="' + t.token.slice(0, 12) + '…"');
    document.body.append(tag);
  } catch (e) {
    out.textContent = 'Could not set up the demo: ' + (e as Error).message;
    out.classList.add('error');
  }
}

void main();
