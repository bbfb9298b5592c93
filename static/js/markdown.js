// A message's Markdown as a tree the views turn into elements: markdown-it (static/vendor/)
// tokenizes, and only the tags listed here come out. User text never reaches an HTML parser:
// markdown-it's renderer (which makes an HTML string) is not used, `html` is off so tags in a
// message stay text, and the views build every element themselves (views/parts.js).
import MarkdownIt from '../vendor/markdown-it.esm.min.mjs';
import { parseText, safeHref } from './text.js';

// The subset: emphasis, strikethrough, code (inline, fenced, indented), block quotes, lists,
// links. Headings, rules, images and tables are off: in a chat line "# 1" or "---" is text,
// and an image would fetch whatever a sender names.
const md = new MarkdownIt('commonmark', { html: false, linkify: false, typographer: false });
md.enable('strikethrough');
md.disable(['heading', 'lheading', 'hr', 'image', 'html_block', 'html_inline']);
// A link whose address is not http(s) stays text: [x](javascript:...) shows as typed.
md.validateLink = (url) => safeHref(url) !== null;

// Token type (without _open) -> the element it becomes.
const TAGS = {
  paragraph: 'p',
  blockquote: 'blockquote',
  bullet_list: 'ul',
  ordered_list: 'ol',
  list_item: 'li',
  strong: 'strong',
  em: 'em',
  s: 's',
  link: 'a',
};
export const LINK_REL = 'noopener noreferrer nofollow';

// A node is a string (text), {tag, attrs, children}, or a piece from text.js (link/mention).
function element(token) {
  const kind = token.type.replace(/_open$/, '');
  const tag = TAGS[kind];
  if (!tag) return { tag: null, attrs: {}, children: [] }; // its children only
  if (token.hidden) return { tag: null, attrs: {}, children: [] }; // a tight list's <p>
  const attrs = {};
  if (tag === 'ol') {
    const start = Number(token.attrGet('start'));
    if (Number.isInteger(start) && start !== 1) attrs.start = start;
  }
  if (tag === 'a') {
    const href = safeHref(token.attrGet('href') || '');
    if (!href) return { tag: null, attrs: {}, children: [] };
    Object.assign(attrs, { href, target: '_blank', rel: LINK_REL });
  }
  return { tag, attrs, children: [] };
}

function leaf(token, me, inLink) {
  switch (token.type) {
    case 'text':
      return inLink ? [token.content] : parseText(token.content, me);
    case 'softbreak':
      return ['\n']; // what was typed on two lines shows on two lines
    case 'hardbreak':
      return [{ tag: 'br', attrs: {}, children: [] }];
    case 'code_inline':
      return [{ tag: 'code', attrs: {}, children: [token.content] }];
    case 'fence':
    case 'code_block': {
      const lang = token.info.trim().split(/\s+/u)[0] || null;
      const code = { tag: 'code', attrs: {}, children: [token.content.replace(/\n$/u, '')] };
      return [{ tag: 'pre', attrs: lang ? { 'data-language': lang } : {}, children: [code] }];
    }
    default:
      return token.content ? [token.content] : []; // anything else shows as its text
  }
}

function build(tokens, me, into) {
  const stack = [into];
  let inLink = 0;
  for (const token of tokens) {
    const top = stack[stack.length - 1];
    if (token.nesting === 1) {
      const node = element(token);
      if (node.tag === 'a') inLink += 1;
      top.children.push(node);
      stack.push(node);
    } else if (token.nesting === -1) {
      const node = stack.pop();
      if (node.tag === 'a') inLink -= 1;
    } else if (token.type === 'inline') {
      build(token.children || [], me, top);
    } else {
      top.children.push(...leaf(token, me, inLink > 0));
    }
  }
  return into;
}

// The message's nodes: [string | {tag, attrs, children} | {kind, text, href?, me?}].
export function parseMarkdown(text, me) {
  return build(md.parse(text, {}), me, { tag: null, attrs: {}, children: [] }).children;
}

// Whether `text` mentions the user named `me` as the page shows it: a mention in prose, never
// inside code, a link or a URL (for the highlight, the unread mentions and the notification).
// The server counts the mentions of `unread` by the same rule (chat/protocol/mentions.py).
export function mentionsMe(text, me) {
  if (!me || typeof text !== 'string' || !text.includes('@')) return false;
  const found = (nodes) =>
    nodes.some(
      (n) =>
        n !== null &&
        typeof n === 'object' &&
        (n.kind === 'mention' ? n.me : Array.isArray(n.children) && found(n.children)),
    );
  return found(parseMarkdown(text, me));
}
