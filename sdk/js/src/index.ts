export { ChatClient, ChatdError, backoffDelay, newCid } from './client.js';
export type { ClientOptions, SocketLike, SocketCtor } from './client.js';
export type * from './types.js';
