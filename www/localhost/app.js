// Mles demo chat client (www/localhost/): joins a channel on the server that served this page
// (wss:// or ws://, subprotocol mles-websocket) and exchanges JSON text messages
// {"from","text","ts"}. History is replayed on every (re)join, so messages are deduplicated.
'use strict';

(() => {
  const max_backoff_ms = 30000;
  const first_backoff_ms = 1000;

  const $ = (id) => document.getElementById(id);
  const join_form = $('join-form');
  const send_form = $('send-form');
  const name_input = $('name');
  const channel_input = $('channel');
  const auth_input = $('auth');
  const message_input = $('message');
  const send_button = $('send');
  const messages = $('messages');
  const status = $('status');

  let socket = null;
  let session = null;          // {name, channel, auth} of the current join
  let attempt = 0;             // reconnects since the last successful open
  let reconnect_timer = null;
  const seen = new Set();      // dedupe keys of what is already shown

  function set_status(text, state) {
    status.textContent = text;
    status.dataset.state = state;
  }

  function set_connected(connected) {
    message_input.disabled = !connected;
    send_button.disabled = !connected;
  }

  // Appends one line built from text nodes only: user data never reaches innerHTML.
  function append(parts, class_name) {
    const item = document.createElement('li');
    if (class_name) item.className = class_name;
    for (const [text, part_class] of parts) {
      const span = document.createElement('span');
      span.className = part_class;
      span.textContent = text;
      item.append(span);
    }
    const at_bottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
    messages.append(item);
    if (at_bottom) messages.scrollTop = messages.scrollHeight;
  }

  function show_once(key, parts, class_name) {
    if (seen.has(key)) return;
    seen.add(key);
    append(parts, class_name);
  }

  function format_time(ts) {
    return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function show_chat(msg) {
    const key = JSON.stringify(['msg', msg.from, msg.ts, msg.text]);
    const mine = session && msg.from === session.name;
    show_once(key, [[format_time(msg.ts), 'meta'], [msg.from, 'from'], [msg.text, 'text']], mine ? 'mine' : '');
  }

  // A frame from the server: a chat message of this app, or another client's join frame
  // (replayed from history). Anything else (binary, not JSON, other shapes) is ignored.
  function on_frame(data) {
    if (typeof data !== 'string') return;
    let value;
    try {
      value = JSON.parse(data);
    } catch {
      return;
    }
    if (value === null || typeof value !== 'object') return;
    if (typeof value.from === 'string' && typeof value.text === 'string' && Number.isFinite(value.ts)) {
      show_chat(value);
    } else if (typeof value.uid === 'string' && typeof value.channel === 'string') {
      if (session && value.uid === session.name) return;
      show_once(JSON.stringify(['join', value.uid]), [[`${value.uid} joined`, 'notice']], '');
    }
  }

  function socket_url() {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;
  }

  function connect() {
    clearTimeout(reconnect_timer);
    set_status(`Connecting to #${session.channel}…`, 'connecting');
    const ws = new WebSocket(socket_url(), 'mles-websocket');
    ws.binaryType = 'arraybuffer';
    socket = ws;

    ws.onopen = () => {
      const join = { uid: session.name, channel: session.channel };
      if (session.auth) join.auth = session.auth;
      ws.send(JSON.stringify(join));
      attempt = 0;
      set_status(`Connected to #${session.channel} as ${session.name}`, 'open');
      set_connected(true);
      if (join_form.contains(document.activeElement)) message_input.focus();
    };
    ws.onmessage = (event) => on_frame(event.data);
    ws.onclose = (event) => {
      if (socket !== ws) return;  // replaced by a new join
      socket = null;
      set_connected(false);
      schedule_reconnect(event.reason);
    };
  }

  // Exponential backoff with jitter, capped at max_backoff_ms.
  function schedule_reconnect(reason) {
    const delay = Math.min(max_backoff_ms, first_backoff_ms * 2 ** attempt);
    const jittered = Math.round(delay * (0.75 + Math.random() * 0.25));
    attempt += 1;
    const why = reason ? ` (${reason})` : '';
    set_status(`Disconnected${why}; retrying in ${Math.ceil(jittered / 1000)} s`, 'error');
    reconnect_timer = setTimeout(connect, jittered);
  }

  join_form.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = name_input.value.trim();
    const channel = channel_input.value.trim();
    const auth = auth_input.value.trim();
    if (!name || !channel) return;
    if (auth && !/^[0-9a-fA-F]+$/.test(auth)) {
      set_status('Auth must be hexadecimal', 'error');
      return;
    }
    if (session && (session.channel !== channel || session.name !== name)) {
      messages.replaceChildren();
      seen.clear();
    }
    session = { name, channel, auth };
    attempt = 0;
    if (socket) {
      const old = socket;
      socket = null;
      old.close(1000);
    }
    connect();
  });

  send_form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = message_input.value.trim();
    if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
    const msg = { from: session.name, text, ts: Date.now() };
    socket.send(JSON.stringify(msg));
    show_chat(msg);
    message_input.value = '';
  });
})();
