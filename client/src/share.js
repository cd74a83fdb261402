// The "Who has access" card: the space's owner, its members and its link setting, read
// and changed through `POST /api/replicache/spaceAccess?spaceID=...`:
//   {}                              -> {"owner", "members": [...], "link": "open"|"members"}
//   {"add": [user]} / {"remove": [user]} / {"link": "open"|"members"} (the owner only)
// A member sees the list; only the owner gets the controls (the server enforces this too:
// 403 for a member, 404 for anyone else).
import { SignInRequired } from './auth.js';

const $ = (id) => document.getElementById(id);

/**
 * Shows the card and keeps it current.
 * @param {object} o
 * @param {string} o.spaceID
 * @param {string} o.me the signed-in user's ID
 * @param {(route: string, body: object, query: string) => Promise<{status: number, json: any}>} o.callApi
 * @param {() => void} o.onHidden the server answered 404: this user may not see the space
 * @param {(e: Error) => void} o.onSignIn the token is gone: sign in again
 * @param {(kind: string, text: string) => void} o.log
 */
export function showAccess({ spaceID, me, callApi, onHidden, onSignIn, log }) {
  const query = `?spaceID=${encodeURIComponent(spaceID)}`;
  const box = $('share');
  const people = $('people');
  const toggle = $('link-open');
  const form = $('add-member');
  const input = $('member-name');
  const note = $('share-note');
  const error = $('share-error');
  box.hidden = false;
  box.dataset.state = 'loading';
  note.textContent = 'Loading…';

  let access = null;
  let busy = false;

  const setError = (text) => {
    error.textContent = text ?? '';
    error.hidden = !text;
  };

  const setBusy = (on) => {
    busy = on;
    box.dataset.busy = String(on);
    for (const el of box.querySelectorAll('button, input')) {
      if (el === toggle) el.disabled = on || !isOwner();
      else el.disabled = on;
    }
  };

  const isOwner = () => !!access && access.owner !== '' && access.owner === me;

  /** One spaceAccess call; the card shows the answer (or what went wrong). */
  async function call(body, what) {
    if (busy) return false;
    setBusy(true);
    setError(null);
    try {
      const { status, json } = await callApi('spaceAccess', body, query);
      if (status === 200 && json && typeof json.owner === 'string') {
        access = { owner: json.owner, members: [...(json.members ?? [])], link: json.link };
        if (what) log('access', what);
        return true;
      }
      if (status === 404) {
        onHidden();
        return false;
      }
      setError(json?.message ?? `The server answered ${status}.`);
      return false;
    } catch (e) {
      if (e instanceof SignInRequired) {
        onSignIn(e);
        return false;
      }
      setError(`Cannot reach the sync server (${e.message}).`);
      return false;
    } finally {
      setBusy(false);
      render();
    }
  }

  function person(user, role) {
    const li = document.createElement('li');
    li.dataset.user = user;
    li.dataset.role = role;
    const avatar = document.createElement('span');
    avatar.className = 'avatar';
    avatar.setAttribute('aria-hidden', 'true');
    avatar.textContent = user.slice(0, 1).toUpperCase();
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = user;
    if (user === me) {
      const you = document.createElement('span');
      you.className = 'you';
      you.textContent = ' (you)';
      name.append(you);
    }
    const badge = document.createElement('span');
    badge.className = 'role';
    badge.textContent = role;
    li.append(avatar, name, badge);
    if (role === 'member' && isOwner()) {
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'link remove';
      remove.textContent = 'Remove';
      remove.setAttribute('aria-label', `Remove ${user}`);
      remove.disabled = busy;
      remove.addEventListener('click', () => call({ remove: [user] }, `removed ${user}`));
      li.append(remove);
    }
    return li;
  }

  function render() {
    if (!access) {
      box.dataset.state = 'error';
      note.textContent = '';
      return;
    }
    const owner = isOwner();
    box.dataset.state = 'ready';
    box.dataset.owner = access.owner;
    box.dataset.link = access.link;
    box.dataset.role = owner ? 'owner' : access.members.includes(me) ? 'member' : 'link';
    const items = [];
    if (access.owner !== '') items.push(person(access.owner, 'owner'));
    for (const m of [...access.members].sort()) if (m !== access.owner) items.push(person(m, 'member'));
    if (items.length === 0) {
      const li = document.createElement('li');
      li.className = 'empty';
      li.textContent = 'Nobody in particular: this space has no owner.';
      items.push(li);
    }
    people.replaceChildren(...items);
    toggle.checked = access.link === 'open';
    toggle.disabled = busy || !owner;
    form.hidden = !owner;
    note.textContent = owner
      ? 'You own this space. Add people by the user ID they sign in with (locally: the name they typed).'
      : access.owner === ''
        ? 'This space was made without sign-in: anyone with its link can open it.'
        : `Only its owner, ${access.owner}, can change who has access.`;
  }

  toggle.addEventListener('change', () => {
    const link = toggle.checked ? 'open' : 'members';
    call({ link }, link === 'open' ? 'anyone with the link may now use this space' : 'members only now');
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const user = input.value.trim();
    if (!user) return;
    if (await call({ add: [user] }, `added ${user}`)) input.value = '';
  });
  $('share-refresh').addEventListener('click', () => call({}));
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') call({});
  });

  return call({});
}
