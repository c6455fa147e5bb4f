// The daemon's pages: a hash router over the views of browse.js, upload.js and remote.js.
import { api, h } from "./dom.js";
import { instanceView, patientView, patientsView, searchView, seriesView, studyView } from "./browse.js";
import { dicomwebView, jobsView, modalitiesView, peersView } from "./remote.js";
import { uploadView } from "./upload.js";

const main = document.getElementById("main");

// -- routing ------------------------------------------------------------------------------------------
async function render() {
  const [path, search] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  let view;
  try {
    if (!parts.length) view = await patientsView(params);
    else if (parts[0] === "search") view = searchView(params);
    else if (parts[0] === "upload") view = uploadView();
    else if (parts[0] === "jobs") view = await jobsView();
    else if (parts[0] === "modalities") view = await modalitiesView();
    else if (parts[0] === "peers") view = await peersView();
    else if (parts[0] === "dicomweb") view = await dicomwebView(params);
    else if (parts[0] === "patients" && parts[1]) view = await patientView(parts[1]);
    else if (parts[0] === "studies" && parts[1]) view = await studyView(parts[1]);
    else if (parts[0] === "series" && parts[1]) view = await seriesView(parts[1]);
    else if (parts[0] === "instances" && parts[1]) view = await instanceView(parts[1]);
    else view = [h("h1", {}, "Not found"), h("p", {}, "No page at this address.")];
  } catch (e) {
    view = [h("h1", {}, "Error"), h("p", { class: "failed" }, e.message)];
  }
  main.replaceChildren(...[view].flat());
  main.dataset.ready = location.hash;  // the browser tests wait for it
}

window.addEventListener("hashchange", render);
api("GET", "/system").then((s) => { document.getElementById("system").textContent = `${s.Name} · ${s.Version}`; }).catch(() => {});
render();
