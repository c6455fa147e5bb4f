import { describeError, h, url } from "./dom.js";

// -- upload: files, folders and ZIP archives, one request each, with progress -----------------------
export function uploadView() {
  const rows = h("tbody", {});
  const summary = h("p", { class: "muted" }, "Drop DICOM files, folders or ZIP archives here, or choose them.");
  const files = h("input", { type: "file", multiple: true, "data-role": "files", onchange: () => { enqueue([...files.files]); files.value = ""; } });
  const folder = h("input", { type: "file", webkitdirectory: true, "data-role": "folder", onchange: () => { enqueue([...folder.files]); folder.value = ""; } });
  const zone = h("div", { class: "drop", "data-role": "drop" }, summary,
    h("div", { class: "actions" }, h("label", {}, "Files ", files), h("label", {}, "Folder ", folder)));
  const queue = [];
  let running = 0, stored = 0, failed = 0;

  const count = () => { summary.textContent = `${stored} stored, ${failed} failed, ${queue.length + running} to go`; };
  function enqueue(list) {
    for (const file of list) {
      const bar = h("progress", { max: 1, value: 0 });
      const status = h("td", { class: "status" }, "waiting");
      rows.append(h("tr", { "data-file": file.name }, h("td", {}, file.webkitRelativePath || file.name),
        h("td", {}, `${Math.ceil(file.size / 1024)} KiB`), h("td", {}, bar), status));
      queue.push({ file, bar, status });
    }
    count();
    while (running < 3 && queue.length) next();
  }
  function next() {
    const item = queue.shift();
    if (!item) return;
    running += 1;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url("/instances"));
    xhr.setRequestHeader("X-Requested-With", "dicomweb-daemon");
    xhr.upload.onprogress = (event) => { if (event.lengthComputable) item.bar.value = event.loaded / event.total; };
    xhr.onloadend = () => {
      running -= 1;
      item.bar.value = 1;
      if (xhr.status >= 200 && xhr.status < 300) {
        let answers = [];
        try { answers = [].concat(JSON.parse(xhr.responseText)); } catch (e) { answers = []; }
        const bad = answers.filter((a) => a.Status && !["Success", "AlreadyStored"].includes(a.Status));
        item.status.textContent = answers.length > 1 ? `${answers.length - bad.length} of ${answers.length} stored`
          : (answers[0] && answers[0].Status) || "stored";
        item.status.className = bad.length ? "status failed" : "status ok";
        stored += 1;
      } else {
        item.status.textContent = xhr.status ? describeError(xhr.status, xhr.responseText) : "the daemon did not answer";
        item.status.className = "status failed";
        failed += 1;
      }
      count();
      next();
    };
    item.status.textContent = "sending";
    xhr.send(item.file);
  }
  async function entries(entry) {  // a dropped folder, walked
    if (entry.isFile) return [await new Promise((ok, ko) => entry.file(ok, ko))];
    const reader = entry.createReader();
    const found = [];
    for (;;) {
      const batch = await new Promise((ok, ko) => reader.readEntries(ok, ko));
      if (!batch.length) break;
      for (const child of batch) found.push(...await entries(child));
    }
    return found;
  }
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const items = [...(event.dataTransfer.items || [])].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
    if (items.length) {
      for (const entry of items) enqueue(await entries(entry));
    } else {
      enqueue([...event.dataTransfer.files]);
    }
  });
  return [h("h1", {}, "Upload"), zone,
    h("table", { class: "uploads" }, h("thead", {}, h("tr", {}, ["File", "Size", "Progress", "Result"].map((c) => h("th", {}, c)))), rows)];
}

