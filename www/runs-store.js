// The lab log's storage in the browser (IndexedDB, usable from the worker): each run's run.json
// in `meta` (what the runs table lists) and its zip in `zip` (what opens, exports and logs),
// written in one transaction, so a run is stored whole or not at all.

const DB = 'lens2logit-runs';

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore('meta', { keyPath: 'id' });
      request.result.createObjectStore('zip');
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(new Error(`cannot open the lab log (IndexedDB): ${request.error?.message}`));
  });
}

/** MB with one decimal. */
const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

/** How much of the browser's storage the page uses, and its quota. */
export async function usage() {
  const { usage: used = 0, quota = 0 } = (await navigator.storage?.estimate?.()) ?? {};
  return { used, quota, text: quota ? `${mb(used)} of ${mb(quota)} used` : 'storage use unknown' };
}

async function transaction(mode, work) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(['meta', 'zip'], mode);
    let result;
    Promise.resolve(work(tx.objectStore('meta'), tx.objectStore('zip'), (r) => { result = r; })).catch((e) => tx.abort() || reject(e));
    tx.oncomplete = () => { db.close(); resolve(result); };
    tx.onabort = tx.onerror = async () => {
      db.close();
      const error = tx.error;
      if (error?.name === 'QuotaExceededError') {
        reject(new Error(`the browser's storage for this page is full (${(await usage()).text}): the run was not saved. Export or delete runs in the lab log, then try again`));
      } else {
        reject(new Error(`the lab log (IndexedDB) failed: ${error?.message ?? 'aborted'}`));
      }
    };
  });
}

const request = (req, keep) => { req.onsuccess = () => keep(req.result); };

export const putRun = (meta, zip) => transaction('readwrite', (metas, zips) => {
  metas.put(meta);
  zips.put(zip, meta.id);
});

export const hasRun = (id) => transaction('readonly', (metas, _, keep) => request(metas.count(id), (n) => keep(n > 0)));

export const listRuns = () => transaction('readonly', (metas, _, keep) => request(metas.getAll(), keep));

export const getZip = (id) => transaction('readonly', (_, zips, keep) => request(zips.get(id), (zip) => keep(zip)))
  .then((zip) => {
    if (!zip) throw new Error(`no run ${id} in the lab log`);
    return zip;
  });

export const deleteRuns = (ids) => transaction('readwrite', (metas, zips) => {
  for (const id of ids) {
    metas.delete(id);
    zips.delete(id);
  }
});
