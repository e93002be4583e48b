/**
 * kiln's dashboard: sign in with an API key, then three pages chosen by the URL's hash —
 * #/ (the sandbox table), #/sandbox/<id> (one sandbox) and #/host (capacity, templates,
 * audit, doctor). The admin key (scope `admin`) sees every sandbox; a tenant key its own.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, describe, getKey, setKey } from './api.js';
import { SandboxTable } from './sandboxes.js';
import { SandboxPage } from './sandbox.js';
import { HostPage } from './host.js';
import './style.css';
import 'uplot/dist/uPlot.min.css';
import '@xterm/xterm/css/xterm.css';

function SignIn({ onIn }: { onIn: () => void }) {
  const [key, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setKey(key.trim());
    try {
      await api('GET', '/v1/info');
      onIn();
    } catch (err) {
      setKey(null);
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <h1>kiln</h1>
      <form onSubmit={submit} aria-label="Sign in">
        <label for="apikey">API key</label>
        <input id="apikey" name="apikey" type="password" autocomplete="off" required value={key} onInput={(e) => setValue((e.target as HTMLInputElement).value)} placeholder="kiln_…" />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
        <p class="hint">The key stays in this tab (sessionStorage) and is sent as a Bearer header. Admin key: <code>kiln key create --tenant ops --scope admin</code> on the host.</p>
      </form>
    </main>
  );
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function App() {
  const [signedIn, setSignedIn] = useState(getKey() !== null);
  const hash = useHash();
  if (!signedIn) return <SignIn onIn={() => setSignedIn(true)} />;
  const m = /^#\/sandbox\/([\w-]+)/.exec(hash);
  const page = m?.[1] ? <SandboxPage key={m[1]} id={m[1]} /> : hash.startsWith('#/host') ? <HostPage /> : <SandboxTable />;
  return (
    <>
      <header>
        <nav aria-label="Main">
          <a href="#/" class="brand">
            kiln
          </a>
          <a href="#/" aria-current={!m && !hash.startsWith('#/host') ? 'page' : undefined}>
            Sandboxes
          </a>
          <a href="#/host" aria-current={hash.startsWith('#/host') ? 'page' : undefined}>
            Host
          </a>
          <button
            type="button"
            class="link"
            onClick={() => {
              setKey(null);
              setSignedIn(false);
            }}
          >
            Sign out
          </button>
        </nav>
      </header>
      <main>{page}</main>
    </>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
