import { ChatClient } from '../../sdk/js/src/index.ts';

const app = document.getElementById('app')!;
app.textContent = 'chatd demo (SDK ' + typeof ChatClient + ')';
