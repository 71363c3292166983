// api.js — the page's calls to crmblob's API. Every call after sign-in
// rides on the session cookie (HttpOnly, sent by the browser) and echoes
// the readable XSRF-TOKEN cookie in X-XSRF-TOKEN, as the server demands
// of cookie sessions; SO-Language asks for messages in the page's
// language, SO-TimeZone for dates in the chosen zone with their offset.
// A refusal becomes an ApiError carrying the server's own ErrorMessage.

import { lang } from './i18n.js';

let timeZone = '';
export function setTimeZone(code) { timeZone = code || ''; }

export class ApiError extends Error {
  constructor(status, message, type) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return '';
}

function headers(extra = {}) {
  // X-Requested-With: a 401 then challenges for the cookie only, and the
  // browser opens no password dialog of its own over the page
  const h = { Accept: 'application/json', 'SO-Language': lang(), 'X-Requested-With': 'XMLHttpRequest', ...extra };
  const xsrf = cookie('XSRF-TOKEN');
  if (xsrf) h['X-XSRF-TOKEN'] = xsrf;
  if (timeZone) h['SO-TimeZone'] = `${timeZone}, includeTZOffset`;
  return h;
}

// The error carrier's message, or the status line when the body is not one.
function errorOf(status, statusText, text) {
  try {
    const j = JSON.parse(text);
    if (j && j.ErrorMessage) return new ApiError(status, j.ErrorMessage, j.ErrorType);
  } catch { /* not JSON */ }
  return new ApiError(status, `${status} ${statusText}`.trim());
}

// method path [body] → the parsed JSON answer (null when empty).
export async function call(method, path, body) {
  // no-cache: always ask the server (a 304 if unchanged); an answer with
  // Last-Modified and no Cache-Control could else be reused heuristically
  const init = { method, headers: headers(), credentials: 'same-origin', cache: 'no-cache' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const text = await r.text();
  if (!r.ok) throw errorOf(r.status, r.statusText, text);
  return text ? JSON.parse(text) : null;
}

// A picture as an object URL (an <img> cannot send X-XSRF-TOKEN). The
// browser's HTTP cache keeps the bytes with their ETag: a second look
// costs a 304. null when the entity has no picture.
export async function picture(path) {
  const r = await fetch(path, { headers: headers({ Accept: 'image/*' }), credentials: 'same-origin' });
  if (r.status === 404 || r.status === 204) return null;
  if (!r.ok) throw errorOf(r.status, r.statusText, await r.text());
  return URL.createObjectURL(await r.blob());
}

// Uploads file to path with XMLHttpRequest, whose upload events drive
// onProgress(fraction, fromEvent); resolves with the answer (the BlobId).
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('PUT', path);
    for (const [k, v] of Object.entries(headers({ 'Content-Type': file.type || 'application/octet-stream' })))
      x.setRequestHeader(k, v);
    x.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total, true); };
    x.onload = () => {
      if (x.status >= 200 && x.status < 300) { onProgress(1); resolve(x.responseText ? JSON.parse(x.responseText) : null); }
      else reject(errorOf(x.status, x.statusText, x.responseText));
    };
    x.onerror = () => reject(new ApiError(0, 'network error'));
    x.send(file);
  });
}
