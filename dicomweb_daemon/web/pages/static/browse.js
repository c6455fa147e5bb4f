// Browsing the store: patients, studies, series, instances, search; previews, downloads, protect, delete.
import { LEVELS, api, breadcrumbs, confirmDialog, dicomDate, enc, go, h, table, tag, tagList, toast, url } from "./dom.js";
import { resourceActions } from "./dialogs.js";

// -- actions shared by every level --------------------------------------------------------------
function downloads(route, id) {
  const links = [h("a", { class: "button", href: url(`/${route}/${enc(id)}/${route === "instances" ? "file" : "archive"}`),
    download: "", "data-action": "download" }, route === "instances" ? "Download DICOM file" : "Download ZIP")];
  if (route !== "instances") {
    links.push(h("a", { class: "button", href: url(`/${route}/${enc(id)}/media`), download: "", "data-action": "dicomdir" },
      "Download DICOMDIR"));
  }
  return links;
}

function deleteButton(route, id) {
  return h("button", {
    class: "danger", "data-action": "delete", onclick: async () => {
      if (!(await confirmDialog(`Delete this ${LEVELS[route].toLowerCase()} and everything under it?`))) return;
      try {
        const answer = await api("DELETE", `/${route}/${enc(id)}`);
        toast(`${LEVELS[route]} deleted`);
        const ancestor = answer && answer.RemainingAncestor;
        go(ancestor ? `#${ancestor.Path}` : "#/");
      } catch (e) {
        toast(e.message, true);
      }
    },
  }, "Delete");
}

async function protectButton(id) {
  let protectedNow = (await api("GET", `/patients/${enc(id)}/protected`, undefined, false)).trim() === "1";
  const button = h("button", { "data-action": "protect" });
  const label = () => { button.textContent = protectedNow ? "Unprotect" : "Protect"; button.title = protectedNow ? "Protected from recycling" : ""; };
  button.addEventListener("click", async () => {
    try {
      await api("PUT", `/patients/${enc(id)}/protected`, protectedNow ? "0" : "1", false);
      protectedNow = !protectedNow;
      label();
      toast(protectedNow ? "Patient protected" : "Patient unprotected");
    } catch (e) {
      toast(e.message, true);
    }
  });
  label();
  return button;
}

// -- a scrollable preview: frames of an instance or instances of a series ------------------------
function scroller(sources, caption) {
  const img = h("img", { alt: "preview", "data-role": "preview" });
  const slider = h("input", { type: "range", min: 0, max: Math.max(0, sources.length - 1), value: 0, "aria-label": caption });
  const label = h("span", { class: "muted" });
  const show = (i) => {
    i = Math.max(0, Math.min(sources.length - 1, i));
    slider.value = i;
    img.src = sources[i];
    label.textContent = `${caption} ${i + 1} / ${sources.length}`;
    if (i + 1 < sources.length) new Image().src = sources[i + 1];  // the next one ready when scrolled to
  };
  slider.addEventListener("input", () => show(Number(slider.value)));
  img.addEventListener("wheel", (event) => { event.preventDefault(); show(Number(slider.value) + Math.sign(event.deltaY)); });
  img.addEventListener("error", () => { label.textContent = `${caption} ${Number(slider.value) + 1}: no preview (not an image the daemon can render)`; });
  if (sources.length) show(0);
  return h("div", { class: "viewer" }, h("figure", {}, img),
    h("div", { class: "controls" }, label, sources.length > 1 ? slider : null));
}

// -- views ------------------------------------------------------------------------------------------
export async function patientsView(params) {
  const since = Number(params.get("since") || 0), limit = 100;
  const patients = await api("GET", `/patients?expand&since=${since}&limit=${limit}`);
  const pager = h("div", { class: "actions" },
    since > 0 ? h("a", { class: "button", href: `#/?since=${Math.max(0, since - limit)}` }, "Previous") : null,
    patients.length === limit ? h("a", { class: "button", href: `#/?since=${since + limit}` }, "Next") : null);
  return [h("h1", {}, "Patients"),
    table([["Name", (p) => tag(p, "PatientName")], ["ID", (p) => tag(p, "PatientID")],
      ["Birth date", (p) => dicomDate(tag(p, "PatientBirthDate"))], ["Sex", (p) => tag(p, "PatientSex")],
      ["Studies", (p) => (p.Studies || []).length]], patients, (p) => go(`#/patients/${enc(p.ID)}`)), pager];
}

export async function patientView(id) {
  const [patient, studies, protect] = await Promise.all([api("GET", `/patients/${enc(id)}`),
    api("GET", `/patients/${enc(id)}/studies`), protectButton(id)]);
  return [breadcrumbs(patient, "Patient"), h("h1", {}, tag(patient, "PatientName") || "(no name)"),
    tagList(patient.MainDicomTags),
    h("div", { class: "actions" }, downloads("patients", id), resourceActions("patients", id), protect, deleteButton("patients", id)),
    h("h2", {}, "Studies"),
    studyTable(studies)];
}

function studyTable(studies, withPatient = false) {
  const columns = [["Date", (s) => dicomDate(tag(s, "StudyDate"))], ["Description", (s) => tag(s, "StudyDescription")],
    ["Accession", (s) => tag(s, "AccessionNumber")], ["Series", (s) => (s.Series || []).length]];
  if (withPatient) {
    columns.unshift(["Patient", (s) => (s.PatientMainDicomTags || {}).PatientName || ""],
      ["Patient ID", (s) => (s.PatientMainDicomTags || {}).PatientID || ""]);
  }
  return table(columns, studies, (s) => go(`#/studies/${enc(s.ID)}`));
}

let viewer = null;  // whether the daemon serves the OHIF viewer, and how to get it (asked once)

async function viewerLink(studyUid) {
  if (viewer === null) viewer = await api("GET", "/ui/viewer.json");
  if (viewer.Installed) {
    return h("a", { class: "button primary", href: url(`/ohif/viewer?StudyInstanceUIDs=${enc(studyUid)}`),
      target: "_blank", rel: "noopener", "data-action": "viewer" }, "Open in viewer");
  }
  return h("span", { class: "muted", "data-role": "no-viewer" }, `No viewer installed; get OHIF with: ${viewer.Fetch}`);
}

export async function studyView(id) {
  const [study, series] = await Promise.all([api("GET", `/studies/${enc(id)}`), api("GET", `/studies/${enc(id)}/series`)]);
  const viewerOrNote = await viewerLink(tag(study, "StudyInstanceUID"));
  const link = viewerOrNote.tagName === "A" ? viewerOrNote : null;
  return [breadcrumbs(study, "Study"), h("h1", {}, tag(study, "StudyDescription") || "Study"),
    tagList({ ...study.PatientMainDicomTags, ...study.MainDicomTags }),
    h("div", { class: "actions" }, link, downloads("studies", id), resourceActions("studies", id), deleteButton("studies", id)),
    link ? null : h("p", {}, viewerOrNote),
    h("h2", {}, "Series"),
    table([["Number", (s) => tag(s, "SeriesNumber")], ["Modality", (s) => tag(s, "Modality")],
      ["Description", (s) => tag(s, "SeriesDescription")], ["Instances", (s) => (s.Instances || []).length]],
    series, (s) => go(`#/series/${enc(s.ID)}`))];
}

export async function seriesView(id) {
  const [series, instances] = await Promise.all([api("GET", `/series/${enc(id)}`), api("GET", `/series/${enc(id)}/instances`)]);
  instances.sort((a, b) => (a.IndexInSeries ?? Number(tag(a, "InstanceNumber"))) - (b.IndexInSeries ?? Number(tag(b, "InstanceNumber"))));
  return [breadcrumbs(series, "Series"), h("h1", {}, tag(series, "SeriesDescription") || `${tag(series, "Modality")} series`),
    scroller(instances.map((i) => url(`/instances/${enc(i.ID)}/preview`)), "Instance"),
    h("div", { class: "actions" }, downloads("series", id), resourceActions("series", id), deleteButton("series", id)),
    tagList(series.MainDicomTags),
    h("h2", {}, "Instances"),
    table([["Number", (i) => tag(i, "InstanceNumber")], ["SOP Instance UID", (i) => tag(i, "SOPInstanceUID")],
      ["Size", (i) => i.FileSize ? `${Math.round(i.FileSize / 1024)} KiB` : ""]], instances, (i) => go(`#/instances/${enc(i.ID)}`))];
}

export async function instanceView(id) {
  const [instance, tags, frames] = await Promise.all([api("GET", `/instances/${enc(id)}`),
    api("GET", `/instances/${enc(id)}/tags?simplify`), api("GET", `/instances/${enc(id)}/frames`).catch(() => [])]);
  const sources = frames.length > 1 ? frames.map((f) => url(`/instances/${enc(id)}/frames/${f}/preview`))
    : [url(`/instances/${enc(id)}/preview`)];
  return [breadcrumbs(instance, "Instance"), h("h1", {}, `Instance ${tag(instance, "InstanceNumber")}`),
    scroller(sources, "Frame"),
    h("div", { class: "actions" }, downloads("instances", id), resourceActions("instances", id), deleteButton("instances", id)),
    h("h2", {}, "Tags"), tagList(tags)];
}

export function searchView(params) {
  const fields = [["PatientName", "Patient name"], ["PatientID", "Patient ID"], ["AccessionNumber", "Accession"],
    ["ModalitiesInStudy", "Modality"], ["StudyDescription", "Description"]];
  const inputs = Object.fromEntries(fields.map(([key]) => [key, h("input", { name: key, value: params.get(key) || "" })]));
  const from = h("input", { type: "date", name: "from", value: params.get("from") || "" });
  const to = h("input", { type: "date", name: "to", value: params.get("to") || "" });
  const results = h("div", {});
  const form = h("form", {
    class: "search", onsubmit: (event) => {
      event.preventDefault();
      const wanted = new URLSearchParams();
      for (const [key, input] of Object.entries(inputs)) if (input.value.trim()) wanted.set(key, input.value.trim());
      if (from.value) wanted.set("from", from.value);
      if (to.value) wanted.set("to", to.value);
      go(`#/search?${wanted}`);
    },
  }, fields.map(([key, label]) => h("label", {}, label, inputs[key])), h("label", {}, "Study date from", from),
  h("label", {}, "to", to), h("label", {}, "\u00a0", h("button", { type: "submit" }, "Search")));
  const query = {};
  for (const [key] of fields) if (params.get(key)) query[key] = params.get(key);
  const day = (value) => (value || "").replaceAll("-", "");
  if (params.get("from") || params.get("to")) query.StudyDate = `${day(params.get("from"))}-${day(params.get("to"))}`;
  if (Object.keys(query).length) {
    results.append(h("p", { class: "muted" }, "Searching…"));
    api("POST", "/tools/find", { Level: "Study", Query: query, Expand: true, Limit: 200 }).then((studies) => {
      results.replaceChildren(h("p", { class: "muted" }, `${studies.length} studies (wildcards * and ? allowed)`),
        studyTable(studies, true));
    }).catch((e) => results.replaceChildren(h("p", { class: "failed" }, e.message)));
  }
  return [h("h1", {}, "Search studies"), form, results];
}

