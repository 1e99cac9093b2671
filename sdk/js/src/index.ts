export { ChatClient, ChatdError, backoffDelay, newCid } from './client.js';
export type { ClientOptions, SocketLike, SocketCtor, Transport } from './client.js';
export type { EventSourceLike, EventSourceCtor } from './http.js';
export type { FileRecord, UploadOptions, UploadProgress, UploadType, SendFileInput } from './upload.js';
export { indexedDBStore } from './persist.js';
export type { SendStore, StoredSend } from './persist.js';
export type * from './types.js';
