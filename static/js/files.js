// Files (docs/files.md): uploads from the composer (attach button, drag and drop, paste), each
// with a progress bar and a cancel button until it is stored; the files of messages shown as
// inline images (opening a lightbox) or as chips with a name and a size.
import { draftKey } from './protocol.js';
import { state } from './state/index.js';
import { h, reactive } from './vue.js';

const UPLOADS = '/api/v1/uploads';
const INLINE = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
const number = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });

// Uploads of the composer, by conversation (draftKey): [{key, name, size, loaded, status,
// file, reason, xhr}], status 'uploading' | 'done' | 'failed'.
export const uploads = reactive({ byConv: {}, lightbox: null });
let serial = 0;

export function sizeText(bytes) {
  if (bytes < 1000) return bytes + (bytes === 1 ? ' byte' : ' bytes');
  if (bytes < 1e6) return number.format(bytes / 1e3) + ' KB';
  return number.format(bytes / 1e6) + ' MB';
}

function listOf(conv) {
  const key = draftKey(conv);
  if (!uploads.byConv[key]) uploads.byConv[key] = [];
  return uploads.byConv[key];
}

export function pending(conv) {
  return uploads.byConv[draftKey(conv)] || [];
}

// Whether files may be attached here: only a signed-in account uploads (docs/files.md).
export function canAttach() {
  return state.me !== null && !state.me.guest;
}

// Starts an upload of each file; their chips show the progress.
export function attach(conv, files) {
  if (!canAttach()) return;
  const list = listOf(conv);
  for (const file of files) {
    const entry = reactive({ key: 'u' + ++serial, name: file.name || 'pasted file',
      size: file.size, loaded: 0, status: 'uploading', file: null, reason: '', xhr: null });
    list.push(entry);
    const xhr = new XMLHttpRequest();
    entry.xhr = xhr;
    xhr.open('POST', UPLOADS + '?name=' + encodeURIComponent(entry.name));
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => {
      entry.loaded = e.loaded;
    };
    xhr.onload = () => {
      entry.xhr = null;
      const body = xhr.response || {};
      if (xhr.status === 201 && typeof body.id === 'string') {
        Object.assign(entry, { status: 'done', file: body, loaded: entry.size });
      } else {
        Object.assign(entry, { status: 'failed',
          reason: body.reason || 'The upload failed (' + xhr.status + ').' });
      }
    };
    xhr.onerror = () => {
      Object.assign(entry, { status: 'failed', xhr: null,
        reason: 'The upload failed: the server could not be reached.' });
    };
    xhr.send(file);
  }
}

// Cancel an upload under way, or take a finished one off the message.
export function remove(conv, key) {
  const list = listOf(conv);
  const at = list.findIndex((e) => e.key === key);
  if (at < 0) return;
  if (list[at].xhr) list[at].xhr.abort();
  list.splice(at, 1);
}

// The stored files of the composer's message, and whether any is still on its way.
export function ready(conv) {
  const list = pending(conv);
  return {
    files: list.filter((e) => e.status === 'done').map((e) => e.file),
    busy: list.some((e) => e.status === 'uploading'),
  };
}

export function clear(conv) {
  uploads.byConv[draftKey(conv)] = [];
}

// The composer's chips: one per upload, with its progress or its failure, and Cancel/Remove.
export function uploadChips(conv) {
  const list = pending(conv);
  if (!list.length) return null;
  return h('ul', { class: 'upload-chips', 'aria-label': 'Attached files' }, list.map((e) =>
    h('li', { key: e.key, class: ['upload-chip', e.status] }, [
      h('span', { class: 'file-name' }, e.name),
      h('span', { class: 'file-size muted' }, sizeText(e.size)),
      e.status === 'uploading'
        ? h('progress', { max: e.size || 1, value: e.loaded, 'aria-label': 'Uploading ' + e.name })
        : null,
      e.status === 'failed' ? h('span', { class: 'upload-error', role: 'alert' }, e.reason) : null,
      h('button', { type: 'button', class: 'link', 'aria-label':
          (e.status === 'uploading' ? 'Cancel upload of ' : 'Remove ') + e.name,
        onClick: () => remove(conv, e.key) }, e.status === 'uploading' ? 'Cancel' : 'Remove'),
    ])));
}

// Only well-formed file objects from the server are shown.
export function filesOf(frame) {
  if (!Array.isArray(frame.files)) return [];
  return frame.files.filter((f) => f && typeof f.id === 'string' && typeof f.url === 'string' &&
    typeof f.name === 'string' && Number.isInteger(f.size) && typeof f.type === 'string');
}

// The text without the lines the server adds for clients that do not show `files`.
export function withoutFileLines(text, files) {
  if (!files.length) return text;
  const urls = new Set(files.map((f) => f.url));
  const lines = text.split('\n');
  while (lines.length && urls.has(lines[lines.length - 1].split(' ').pop())) lines.pop();
  return lines.join('\n');
}

// A message's files: images inline (the thumbnail; a click opens the lightbox), others chips.
export function messageFiles(files) {
  if (!files || !files.length) return null;
  return h('ul', { class: 'message-files' }, files.map((f) =>
    h('li', { key: f.id }, INLINE.includes(f.type)
      ? h('button', { type: 'button', class: 'file-image', 'aria-label': 'Open ' + f.name,
          onClick: () => { uploads.lightbox = f; } },
        [h('img', { src: f.thumbnail || f.url, alt: f.name, loading: 'lazy',
          width: f.width, height: f.height })])
      : h('a', { class: 'file-chip', href: f.url, download: f.name }, [
          h('span', { class: 'file-name' }, f.name),
          h('span', { class: 'file-size muted' }, sizeText(f.size)),
        ]))));
}

// The full image over the page; Escape, the button or a click outside closes it.
export const Lightbox = {
  setup() {
    const close = () => { uploads.lightbox = null; };
    const onKeydown = (e) => { if (e.key === 'Escape') close(); };
    return () => {
      const f = uploads.lightbox;
      if (!f) return null;
      return h('div', { class: 'lightbox', role: 'dialog', 'aria-modal': 'true',
        'aria-label': f.name, tabindex: '-1', onKeydown, onClick: close,
        onVnodeMounted: (v) => v.el.focus() }, [
        h('img', { src: f.url, alt: f.name, onClick: (e) => e.stopPropagation() }),
        h('div', { class: 'lightbox-bar' }, [
          h('a', { href: f.url, download: f.name, onClick: (e) => e.stopPropagation() },
            'Download ' + f.name),
          h('button', { type: 'button', onClick: close }, 'Close'),
        ]),
      ]);
    };
  },
};
