// Avatars: with `--avatars initials` (the server's default) the server sends a data: URL of the
// name's initials, and the page draws its own picture of them (graphemes, not code points);
// with `--avatars gravatar` it sends a Gravatar URL, and the page draws its picture when that
// cannot load (no internet, Gravatar down or blocked): it never depends on another host.

const SIZE_PX = 80; // matches the s=80 the server asks Gravatar for
const drawn = new Map(); // name → data: URL, so each name is drawn once

// Whether the server gives Gravatar URLs, so that the join form asks for an email: the page
// says so (templates/index.html) before any frame could.
const kind = document.querySelector('meta[name="chat-avatars"]');
export const usesGravatar = kind !== null && kind.getAttribute('content') === 'gravatar';

// A stable number from a string (FNV-1a), to give each name its own colour.
function hash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

// The first letter of the first two words, as the reader would write them: graphemes, not
// UTF-16 units, so an emoji or an accented letter is not cut in half.
export function initials(name) {
  const words = name.trim().split(/\s+/u).filter(Boolean);
  const firstGrapheme = (word) => {
    if (window.Intl && Intl.Segmenter) {
      const first = new Intl.Segmenter().segment(word)[Symbol.iterator]().next();
      return first.done ? '' : first.value.segment;
    }
    return Array.from(word)[0] || '';
  };
  return words.slice(0, 2).map(firstGrapheme).join('').toLocaleUpperCase() || '?';
}

// A data: URL of the initials on a colour picked by the name (allowed by the page's CSP as
// img-src data:). Drawn on a canvas, so the name is never parsed as markup.
export function fallbackAvatar(name) {
  const key = name || '?';
  if (drawn.has(key)) return drawn.get(key);
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = SIZE_PX;
  const ctx = canvas.getContext('2d');
  const hue = hash(key.toLocaleLowerCase()) % 360;
  ctx.fillStyle = 'hsl(' + hue + ', 45%, 42%)';
  ctx.fillRect(0, 0, SIZE_PX, SIZE_PX);
  ctx.fillStyle = '#fff';
  ctx.font = '600 34px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(initials(key), SIZE_PX / 2, SIZE_PX / 2 + 2, SIZE_PX - 8);
  const url = canvas.toDataURL('image/png');
  drawn.set(key, url);
  return url;
}

// Only https URLs from the server (Gravatar's) are used as they are; anything else, the
// server's data: URLs included, gets the picture drawn here.
export function isUsableAvatar(url) {
  return typeof url === 'string' && url.startsWith('https://');
}
