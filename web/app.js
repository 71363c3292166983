// app.js — crmblob's page: sign in, browse the four entity kinds with their
// thumbnails, open one to see and change its picture and BLOB record.
//
// Views follow the address (#/Person?skip=50&q=ad, #/Person/7), so a
// reload or the back button shows the same thing. The server decides
// everything that matters: who may write (the BLOB carrier's TableRight,
// which hides the write controls; a forced write is refused by the server
// anyway), the messages (shown as the server worded them), the dates in
// the chosen time zone. Pictures are fetched with the XSRF header and
// shown as object URLs; lists ask for w/h variants only.

import { LANGS, browserLang, lang, locale, setLang, t } from './i18n.js';
import { ApiError, call, picture, setTimeZone, upload } from './api.js';

const KINDS = ['Person', 'Contact', 'Product', 'Project'];
const TOP = 50;
const THUMB = 128; // pixels a side: sharp at 64 CSS pixels on a 2x screen
const FIELDS = {
  Person: [['Firstname', 'firstname'], ['Lastname', 'lastname']],
  Contact: [['Name', 'name']],
  Product: [['Name', 'name']],
  Project: [['Name', 'name']],
};

const $ = (id) => document.getElementById(id);
const state = { signedIn: false, mayWrite: false, view: null, objectUrls: [], listSeq: 0 };

// ---- messages ----
function say(text, ok = false) {
  const m = $('message');
  m.textContent = text;
  m.classList.toggle('ok', ok);
  m.hidden = !text;
}
function fail(e) {
  if (e instanceof ApiError && e.status === 401 && state.signedIn) {
    state.signedIn = false;
    route();
  }
  say(e.message || String(e));
}

// ---- labels ----
function applyLabels() {
  document.documentElement.lang = locale();
  document.title = t('title');
  for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  for (const el of document.querySelectorAll('[data-tp]')) el.placeholder = t(el.dataset.tp);
  $('tabs').setAttribute('aria-label', t('Person') + ' · ' + t('Contact') + ' · ' + t('Product') + ' · ' + t('Project'));
}

function fillLangs() {
  const sel = $('lang');
  for (const [code, name] of Object.entries(LANGS)) sel.add(new Option(name, code));
  sel.value = lang();
  sel.addEventListener('change', () => {
    setLang(sel.value);
    localStorage.setItem('crmblob.lang', sel.value);
    applyLabels();
    route();
  });
}

// The SO-TimeZone codes; the browser's own zone chosen by its city when
// the server knows it, else UTC.
async function fillTimeZones() {
  const sel = $('tz');
  if (sel.options.length) return;
  const j = await call('GET', '/api/v1/TimeZone');
  const city = (Intl.DateTimeFormat().resolvedOptions().timeZone || '').split('/').pop().replace(/_/g, ' ');
  let guess = 'UTC';
  for (const z of j.value) {
    sel.add(new Option(`${z.Name} (${z.TZLocationCode})`, z.TZLocationCode));
    if (city && (z.TZLocationCities || '').split(/,\s*/).includes(city)) guess = z.TZLocationCode;
  }
  sel.value = localStorage.getItem('crmblob.tz') || guess;
  if (!sel.value) sel.value = guess;
  setTimeZone(sel.value);
  $('tz-label').hidden = false;
  sel.addEventListener('change', () => {
    localStorage.setItem('crmblob.tz', sel.value);
    setTimeZone(sel.value);
    route();
  });
}

// ---- formatting ----
function fmtDate(s) {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?$/.exec(s || '');
  if (!m) return s || '';
  const d = new Date(m[1] + 'Z'); // the server's local time, shown as it is
  if (d.getUTCFullYear() < 1900) return '';
  const f = new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'medium', timeZone: 'UTC' });
  return `${f.format(d)} (UTC${m[2] && m[2] !== 'Z' ? m[2] : ''})`;
}
const fmtBytes = (n) => t('bytes', new Intl.NumberFormat(locale()).format(n));
const nameOf = (kind, e) =>
  (kind === 'Person' ? [e.Firstname, e.Lastname].filter(Boolean).join(' ') : e.Name) || `#${e[kind + 'Id']}`;

function dropObjectUrls() {
  for (const u of state.objectUrls) URL.revokeObjectURL(u);
  state.objectUrls = [];
}

// ---- views ----
function show(id) {
  for (const v of ['login', 'list', 'detail']) $(v).hidden = v !== id;
  $('tabs').hidden = !state.signedIn;
  $('signout').hidden = !state.signedIn;
  for (const el of document.querySelectorAll('.write')) el.hidden = !state.mayWrite;
  state.view = id;
}

function parseHash() {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const [kind, id] = path.split('/');
  const p = new URLSearchParams(query || '');
  return {
    kind: KINDS.includes(kind) ? kind : 'Person',
    id: /^\d+$/.test(id || '') ? Number(id) : null,
    skip: Math.max(0, Number(p.get('skip')) || 0),
    q: p.get('q') || '',
  };
}

async function route() {
  dropObjectUrls();
  if (!state.signedIn) {
    show('login');
    $('who').textContent = '';
    return;
  }
  const r = parseHash();
  for (const a of $('tabs').querySelectorAll('a')) {
    if (a.getAttribute('href') === `#/${r.kind}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  try {
    if (r.id) {
      await showDetail(r.kind, r.id);
      $('detail-title').focus(); // keyboard and screen reader users start at the heading
    } else {
      await showList(r.kind, r.skip, r.q);
    }
  } catch (e) {
    fail(e);
  }
}

function listHash(kind, skip, q) {
  const p = new URLSearchParams();
  if (skip) p.set('skip', skip);
  if (q) p.set('q', q);
  const s = p.toString();
  return `#/${kind}${s ? '?' + s : ''}`;
}

async function showList(kind, skip, q) {
  const seq = ++state.listSeq;
  performance.clearMarks('list-start');
  performance.mark('list-start');
  const params = new URLSearchParams({ $top: TOP, $skip: skip });
  if (q) params.set('$filter', `name begins '${q.replace(/'/g, "''")}'`);
  const j = await call('GET', `/api/v1/${kind}?${params}`);
  if (seq !== state.listSeq) return;
  const rows = j.value || [];
  const ul = $('rows');
  ul.replaceChildren();
  const thumbs = [];
  for (const e of rows) {
    const id = e[kind + 'Id'];
    const name = nameOf(kind, e);
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = `#/${kind}/${id}`;
    const img = document.createElement('img');
    img.className = 'thumb';
    img.alt = t('thumbOf', name);
    img.width = img.height = 64;
    const label = document.createElement('span');
    label.textContent = name;
    const small = document.createElement('small');
    small.textContent = `${t('id')} ${id}`;
    label.append(small);
    a.append(img, label);
    li.append(a);
    ul.append(li);
    // ImageBlobId 0: no picture, nothing to ask for
    if (e.ImageBlobId) thumbs.push(loadThumb(img, `/api/v1/${kind}/${id}/Image?w=${THUMB}&h=${THUMB}`));
  }
  $('search').value = q;
  $('empty').hidden = rows.length > 0;
  const more = Boolean(j['odata.nextLink'] || j['@odata.nextLink'] || j.nextLink);
  $('prev').disabled = skip === 0;
  $('next').disabled = !more;
  $('prev').onclick = () => { location.hash = listHash(kind, Math.max(0, skip - TOP), q); };
  $('next').onclick = () => { location.hash = listHash(kind, skip + TOP, q); };
  $('page-no').textContent = t('pageOf', Math.floor(skip / TOP) + 1);
  $('create-form').hidden = true;
  show('list');
  await Promise.all(thumbs);
  if (seq !== state.listSeq) return;
  // the list is complete: every thumbnail decoded and shown (the tests
  // measure list-start → list-complete with the performance timeline)
  performance.clearMarks('list-complete');
  performance.mark('list-complete');
  document.body.dataset.list = `${kind}:${skip}:${q}:${rows.length}`;
}

async function loadThumb(img, path) {
  try {
    const url = await picture(path);
    if (!url) return;
    state.objectUrls.push(url);
    img.src = url;
    await img.decode();
    img.dataset.loaded = '1';
  } catch (e) {
    img.dataset.failed = e.message || '1';
  }
}

// ---- the detail ----
let current = null; // {kind, id}

async function showDetail(kind, id) {
  current = { kind, id };
  const base = `/api/v1/${kind}/${id}`;
  const [ent, info] = await Promise.all([call('GET', base), call('GET', `${base}/ImageInfo`)]);
  state.mayWrite = info.TableRight?.Mask === 'FULL';
  $('detail-title').textContent = nameOf(kind, ent);
  $('back').href = `#/${kind}`;
  const img = $('picture');
  img.hidden = true;
  img.removeAttribute('src');
  $('no-picture').hidden = info.BlobId > 0;
  if (info.BlobId > 0) {
    const url = await picture(`${base}/Image`);
    if (url) {
      state.objectUrls.push(url);
      img.src = url;
      img.alt = info.Description || t('thumbOf', nameOf(kind, ent));
      img.hidden = false;
    }
  }
  $('delete-picture').disabled = !(info.BlobId > 0);
  fillInfo(info);
  $('progress').hidden = true;
  show('detail');
  $('read-only').hidden = state.mayWrite;
}

function fillInfo(info) {
  for (const [id, field] of [['f-description', 'Description'], ['f-extrainfo', 'ExtraInfo'], ['f-conceptualtype', 'ConceptualType']]) {
    $(id).value = info[field] || '';
    $(id).readOnly = !state.mayWrite;
  }
  const facts = [
    ['blobId', info.BlobId || ''], ['mimeType', info.MimeType],
    ['size', info.BlobId ? fmtBytes(info.BlobSize) : ''], ['originalSize', info.BlobId ? fmtBytes(info.OriginalSize) : ''],
    ['createdBy', info.CreatedBy?.FullName], ['createdDate', fmtDate(info.CreatedDate)],
    ['updatedBy', info.UpdatedBy?.FullName], ['updatedDate', fmtDate(info.UpdatedDate)],
  ];
  const dl = $('facts');
  dl.replaceChildren();
  for (const [k, v] of facts) {
    const dt = document.createElement('dt');
    dt.textContent = t(k);
    const dd = document.createElement('dd');
    dd.textContent = v ?? '';
    dd.dataset.field = k;
    dl.append(dt, dd);
  }
}

async function saveInfo(ev) {
  ev.preventDefault();
  const { kind, id } = current;
  try {
    const info = await call('PUT', `/api/v1/${kind}/${id}/ImageInfo`, {
      Description: $('f-description').value,
      ExtraInfo: $('f-extrainfo').value,
      ConceptualType: $('f-conceptualtype').value,
    });
    fillInfo(info);
    say(t('saved'), true);
  } catch (e) {
    fail(e);
  }
}

async function sendFile(file) {
  if (!file || !current) return;
  const { kind, id } = current;
  const bar = $('progress');
  bar.hidden = false;
  bar.value = 0;
  say('');
  try {
    let events = 0;
    await upload(`/api/v1/${kind}/${id}/Image`, file, (f, fromEvent) => {
      bar.value = f;
      if (fromEvent) document.body.dataset.progressEvents = String(++events);
    });
    $('file').value = '';
    await showDetail(kind, id);
    document.body.dataset.uploaded = String(Date.now());
  } catch (e) {
    bar.hidden = true;
    fail(e);
  }
}

function wireDrop() {
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    sendFile(e.dataTransfer?.files?.[0]);
  });
  $('file').addEventListener('change', () => sendFile($('file').files[0]));
}

async function remove(path, then) {
  if (!confirm(t('confirmDelete'))) return;
  try {
    await call('DELETE', path);
    await then();
  } catch (e) {
    fail(e);
  }
}

// ---- creating ----
function openCreate() {
  const { kind } = parseHash();
  const box = $('create-fields');
  box.replaceChildren();
  for (const [field, label] of FIELDS[kind]) {
    const l = document.createElement('label');
    l.htmlFor = `c-${field}`;
    l.textContent = t(label);
    const i = document.createElement('input');
    i.id = `c-${field}`;
    i.name = field;
    i.required = field !== 'Lastname';
    box.append(l, i);
  }
  $('create-form').hidden = false;
  box.querySelector('input').focus();
}

async function create(ev) {
  ev.preventDefault();
  const { kind } = parseHash();
  const body = {};
  for (const i of $('create-fields').querySelectorAll('input')) body[i.name] = i.value;
  try {
    const e = await call('POST', `/api/v1/${kind}`, body);
    location.hash = `#/${kind}/${e[kind + 'Id']}`;
  } catch (e) {
    fail(e);
  }
}

// ---- signing in and out ----
// Is there a session, and may its user write? The default BLOB carrier
// answers both (its TableRight is the caller's).
async function probeSession() {
  try {
    const b = await call('POST', '/api/v1/Agents/BLOB/CreateDefaultBlobEntity');
    state.mayWrite = b?.TableRight?.Mask === 'FULL';
    state.signedIn = true;
  } catch {
    state.signedIn = false;
  }
}

async function signIn(ev) {
  ev.preventDefault();
  say('');
  try {
    const r = await call('POST', '/api/v1/login', {
      UserName: $('login-user').value,
      Password: $('login-password').value,
    });
    $('login-password').value = '';
    await afterSignIn(r.Associate?.FullName);
  } catch (e) {
    say(e.message);
  }
}

async function afterSignIn(who) {
  await probeSession();
  if (!state.signedIn) return;
  $('who').textContent = who ? t('signedInAs', who) : '';
  await fillTimeZones().catch(fail);
  if (!location.hash) location.hash = '#/Person';
  await route();
}

async function signOut() {
  try {
    await call('POST', '/api/v1/logout');
  } catch (e) {
    say(e.message);
  }
  state.signedIn = false;
  state.mayWrite = false;
  await route();
  $('login-user').focus();
}

function wire() {
  $('login-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', signOut);
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = listHash(parseHash().kind, 0, $('search').value.trim());
  });
  $('new').addEventListener('click', openCreate);
  $('create-cancel').addEventListener('click', () => { $('create-form').hidden = true; });
  $('create-form').addEventListener('submit', create);
  $('info-form').addEventListener('submit', saveInfo);
  $('delete-picture').addEventListener('click', () =>
    remove(`/api/v1/${current.kind}/${current.id}/Image`, () => showDetail(current.kind, current.id)));
  $('delete-entity').addEventListener('click', () =>
    remove(`/api/v1/${current.kind}/${current.id}`, async () => { location.hash = `#/${current.kind}`; }));
  wireDrop();
  window.addEventListener('hashchange', () => { say(''); route(); });
}

async function main() {
  setLang(localStorage.getItem('crmblob.lang') || browserLang());
  fillLangs();
  applyLabels();
  wire();
  await probeSession();
  if (state.signedIn) await afterSignIn('');
  else await route();
  document.body.dataset.ready = '1';
}

main();
