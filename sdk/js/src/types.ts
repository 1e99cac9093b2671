// Types of chatd's client protocol (docs/protocol.md).

/** Error codes a chatd reply carries. */
export type ServerErrorCode =
  | 'bad_request' | 'unauthorized' | 'forbidden' | 'not_found' | 'conflict'
  | 'rate_limited' | 'too_large' | 'unavailable' | 'internal';

/**
 * Error codes the SDK itself raises: `timeout` (no reply within the request
 * timeout), `disconnected` (the connection dropped before a reply to a
 * request that is not safe to repeat), `closed` (close() or logout()),
 * `aborted` (an upload's signal aborted it).
 */
export type ClientErrorCode = 'timeout' | 'disconnected' | 'closed' | 'aborted';

export type ErrorCode = ServerErrorCode | ClientErrorCode;

export type Platform = 'web' | 'ios' | 'android' | 'desktop' | 'miniprogram' | 'other';

export type MessageType =
  | 'text' | 'image' | 'voice' | 'video' | 'file' | 'rich' | 'card' | 'location'
  | 'custom' | 'notice' | 'recalled' | 'op';

export interface TextContent { text: string }
export interface ImageContent { url?: string; file_id?: string; width?: number; height?: number; size?: number }
export interface VoiceContent { url?: string; file_id?: string; duration: number }
export interface VideoContent { url?: string; file_id?: string; duration?: number; cover?: string }
export interface FileContent { url?: string; file_id?: string; name: string; size?: number }
export interface RichContent { html?: string; blocks?: unknown[] }
export interface CardContent { title: string; url?: string; image?: string; desc?: string }
export interface LocationContent { lat: number; lng: number; name?: string }
export interface RecalledContent { by: string; at: number; op_seq: number }
export interface OpContent {
  op: 'recall' | 'edit'; seq: number; by: string; at: number;
  type?: MessageType; content?: Record<string, unknown>; edit_count?: number;
}

/** The content shape of each message type. */
export interface ContentOf {
  text: TextContent; image: ImageContent; voice: VoiceContent; video: VideoContent;
  file: FileContent; rich: RichContent; card: CardContent; location: LocationContent;
  custom: Record<string, unknown>; notice: TextContent; recalled: RecalledContent; op: OpContent;
}

/** A message as `message` events, `history` and `sync` carry it. */
export interface Message<T extends MessageType = MessageType> {
  session_id: number;
  seq: number;
  msg_id: string;
  from: string;
  type: T;
  content: ContentOf[T] & Record<string, unknown>;
  cid?: string;
  created_at: number;
  mentions?: string[];
  mention_all?: boolean;
  edited_at?: number;
  edit_count?: number;
  /** service sessions only */
  shop?: string;
  role?: 'customer' | 'agent' | 'shop';
}

export type SessionKind = 'private' | 'group' | 'system' | 'broadcast' | 'service';

export interface SessionView {
  session_id: number;
  kind: SessionKind;
  name?: string;
  avatar?: string;
  owner?: string;
  peer?: string;
  members?: string[];
  role: string;
  last_seq: number;
  read_seq: number;
  unread: number;
  last_at?: number;
  last_from?: string;
  last_type?: string;
  last_preview?: string;
  created_at: number;
  unread_mentions?: number;
  members_truncated?: boolean;
  group?: Record<string, unknown>;
  consult?: Record<string, unknown>;
  rank?: number;
  muted?: boolean;
  hidden?: boolean;
}

export interface LoginReply { uid: string; nickname: string; avatar?: string; server_time: number; expires_at: number }
export interface SendAck { session_id: number; seq: number; msg_id: string; created_at: number; duplicate?: boolean }
export interface MessagePage { messages: Message[]; has_more: boolean }
export interface SessionsPage {
  sessions: SessionView[]; unread: number; unread_unmuted: number;
  next_cursor?: string; truncated?: boolean; broadcasts?: Record<string, unknown>;
}
export interface ReadReply { session_id: number; read_seq: number }
export interface OpReply { session_id: number; seq: number; op_seq: number; at: number; duplicate?: boolean; edit_count?: number }
export interface PresenceEntry { uid: string; online: boolean; platforms?: Platform[]; last_seen?: number }

/** Fields of a `send`: `session_id` or `to`, a type and its content. */
export type SendInput = {
  [T in Exclude<MessageType, 'recalled' | 'op'>]: {
    type: T;
    content: ContentOf[T] & Record<string, unknown>;
    session_id?: number;
    to?: string;
    /** generated once per send when absent; every retry reuses it */
    cid?: string;
    quote_seq?: number;
    mentions?: string[];
    mention_all?: boolean;
  }
}[Exclude<MessageType, 'recalled' | 'op'>];

/** Every action of the client protocol. */
export type Action =
  | 'login' | 'logout' | 'ping' | 'send' | 'history' | 'sync' | 'sessions'
  | 'session_pin' | 'session_unpin' | 'session_mute' | 'session_unmute' | 'session_hide' | 'session_show'
  | 'session' | 'read' | 'private'
  | 'group_create' | 'group_add' | 'group_remove' | 'group_leave' | 'group_role' | 'group_transfer'
  | 'group_mute' | 'group_mute_all' | 'group_announce' | 'group_policy' | 'group_dismiss'
  | 'broadcasts' | 'broadcast_read' | 'user'
  | 'friend_request' | 'friend_accept' | 'friend_refuse' | 'friend_cancel' | 'friend_delete' | 'friend_remark'
  | 'friends' | 'friend_requests' | 'block' | 'unblock' | 'blocks'
  | 'presence' | 'hide_presence' | 'show_presence' | 'typing'
  | 'recall' | 'forward' | 'delete' | 'clear' | 'hidden' | 'edit'
  | 'consult_get' | 'consult_accept' | 'consult_decline' | 'consult_pause' | 'consult_resume' | 'consult_end'
  | 'service_open' | 'service_conversation' | 'service_status' | 'service_claim' | 'service_transfer'
  | 'service_resolve' | 'service_queue' | 'service_mine' | 'service_agents'
  | 'service_rate' | 'service_note' | 'service_notes'
  | 'service_canned' | 'service_canned_put' | 'service_canned_delete';

/** Request fields and reply data of the actions the SDK types precisely. */
export interface Requests {
  login: [{ app: string; token: string; platform?: Platform }, LoginReply];
  logout: [Record<string, never>, null];
  ping: [Record<string, never>, { server_time: number }];
  send: [SendInput, SendAck];
  history: [{ session_id: number; before?: number; limit?: number }, MessagePage];
  sync: [{ session_id: number; after: number; limit?: number }, MessagePage];
  sessions: [{ limit?: number; cursor?: string; keyword?: string }, SessionsPage];
  session: [{ session_id: number }, SessionView];
  read: [{ session_id: number; seq: number }, ReadReply];
  private: [{ uid: string }, SessionView];
  group_create: [{ name: string; uids: string[]; avatar?: string }, SessionView];
  group_add: [{ session_id: number; uids: string[] }, null];
  group_remove: [{ session_id: number; uids: string[] }, null];
  group_leave: [{ session_id: number }, null];
  user: [{ uid?: string }, { app: string; uid: string; nickname: string; avatar?: string; extra?: unknown; created_at: number; updated_at: number }];
  presence: [{ uids: string[] }, { presence: PresenceEntry[] }];
  typing: [{ session_id: number }, { forwarded: boolean }];
  recall: [{ session_id: number; seq: number; cid?: string }, OpReply];
  edit: [{ session_id: number; seq: number; content: Record<string, unknown>; type?: MessageType; cid?: string }, OpReply];
}

export type RequestFields<A extends string> = A extends keyof Requests ? Requests[A][0] : Record<string, unknown>;
export type ReplyData<A extends string> = A extends keyof Requests ? Requests[A][1] : any;

export interface OpEvent { session_id: number; op_seq: number; op: 'recall' | 'edit'; seq: number; by: string; at: number; type?: MessageType; content?: Record<string, unknown>; edit_count?: number }
export interface KickedEvent { reason: 'logged_in_elsewhere'; platform: Platform; policy: string }

/** Server events, by name (docs/protocol.md, "Events"). */
export interface ServerEvents {
  /** exactly once per message, in seq order per session (see docs/sdk.md) */
  message: Message;
  read: { session_id: number; uid: string; read_seq: number };
  group: { session_id: number; op: string; by: string; uids?: string[]; role?: string; until?: number; mute_all?: boolean; announcement?: unknown; join_policy?: string };
  recall: OpEvent;
  edit: OpEvent;
  broadcast: Message;
  hide: { session_id: number; added: { lo: number; hi: number }[]; hidden: { lo: number; hi: number }[] };
  session_flags: { session_id: number; rank: number; muted: boolean; hidden: boolean };
  kicked: KickedEvent;
  presence: PresenceEntry;
  typing: { session_id: number; uid: string };
  contact: { op: string; from: string; to: string; message?: string; remark?: string; at: number; uid?: string };
  consult: Record<string, unknown> & { session_id: number; type: string };
  service: Record<string, unknown> & { type: string; shop: string };
}

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'waiting' | 'stopped';

/** Events the SDK adds about its own connection. */
export interface ClientEvents {
  state: { state: ConnectionState };
  connected: LoginReply;
  disconnected: { code: number; reason: string; reconnect: boolean };
  /** every known session has been brought up to date after a (re)connect */
  synced: { sessions: number };
  /** sends a previous page left in the persistent queue (persist option), about to be sent with their cids */
  restored: { sends: { cid: string; fields: SendInput }[] };
  error: Error;
}

export type EventMap = ServerEvents & ClientEvents;
