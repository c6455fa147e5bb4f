// Dialogs on a resource: modify, anonymize, send to a modality, a peer or a DICOMweb server.
import { API, LEVELS, api, enc, go, h, toast } from "./dom.js";

/** A modal form: ``submit()`` runs on OK; its error is shown in the form, which stays open. */
export function modal(title, fields, okLabel, submit) {
  const error = h("p", { class: "failed", "data-role": "error" });
  const dialog = h("dialog", { class: "form", "data-dialog": title });
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      error.textContent = "";
      try {
        await submit();
        dialog.close();
      } catch (e) {
        error.textContent = e.message;
      }
    },
  }, h("h2", {}, title), fields, error,
  h("menu", {}, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
    h("button", { type: "submit", class: "primary", "data-action": "ok" }, okLabel)));
  dialog.append(form);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

function field(label, input) { return h("label", { class: "field" }, label, input); }

function tagNames(text) { return text.split(/[\s,]+/).map((t) => t.trim()).filter(Boolean); }

function replacements(text) {
  const out = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf("=");
    if (at <= 0) throw new Error(`"${line}": write Tag=Value, one per line`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

function started(answer) {
  toast(`Job ${answer.ID} started`);
  go("#/jobs");
}

async function download(path, body, name) {
  const answer = await fetch(API + path, { method: "POST", body: JSON.stringify(body),
    headers: { "X-Requested-With": "dicomweb-daemon", "Content-Type": "application/json" } });
  if (!answer.ok) {
    const text = await answer.text();
    let message = `HTTP ${answer.status}`;
    try { const e = JSON.parse(text); message = [e.Message, e.Details].filter(Boolean).join(": "); } catch (x) { /* not JSON */ }
    throw new Error(message);
  }
  const link = h("a", { href: URL.createObjectURL(await answer.blob()), download: name });
  document.body.append(link);
  link.click();
  link.remove();
}

/** Modify (``anonymize`` false) or anonymize a resource, as Orthanc's routes take it. */
export function modificationDialog(route, id, anonymize) {
  const replace = h("textarea", { name: "Replace", rows: 4, placeholder: "PatientName=DOE^JANE" });
  const remove = h("input", { name: "Remove", placeholder: "InstitutionName, 0008,1010" });
  const keep = h("input", { name: "Keep", placeholder: "StudyDescription, SeriesDescription" });
  const keepSource = h("input", { type: "checkbox", name: "KeepSource", checked: true });
  const force = h("input", { type: "checkbox", name: "Force" });
  const privateTags = h("input", { type: "checkbox", name: "RemovePrivateTags" });
  const version = h("select", { name: "DicomVersion" }, ["2023b", "2021b", "2017c", "2008"].map((v) => h("option", { value: v }, v)));
  const instance = route === "instances";
  const fields = [field("Replace (Tag=Value, one per line)", replace), field("Remove (tags)", remove)];
  if (anonymize) fields.push(field("Keep (tags)", keep), field("Profile of the DICOM standard", version));
  else fields.push(field("Remove private tags", privateTags), field("Force (change UIDs or PatientID)", force));
  if (!instance) fields.push(field("Keep the source", keepSource));
  const action = anonymize ? "anonymize" : "modify";
  modal(`${anonymize ? "Anonymize" : "Modify"} this ${LEVELS[route].toLowerCase()}`, fields, anonymize ? "Anonymize" : "Modify", async () => {
    const body = { Replace: replacements(replace.value), Remove: tagNames(remove.value) };
    if (anonymize) Object.assign(body, { Keep: tagNames(keep.value), DicomVersion: version.value });
    else Object.assign(body, { Force: force.checked, RemovePrivateTags: privateTags.checked });
    if (instance) {  // Orthanc answers the new file and stores nothing
      await download(`/instances/${enc(id)}/${action}`, body, `${action}d.dcm`);
      return;
    }
    started(await api("POST", `/${route}/${enc(id)}/${action}`, { ...body, KeepSource: keepSource.checked, Asynchronous: true }));
  });
}

/** Send a resource to a DICOM modality (C-STORE), an Orthanc peer or a DICOMweb server (STOW-RS). */
export async function sendDialog(route, id) {
  const [modalities, peers, servers] = await Promise.all([api("GET", "/modalities"), api("GET", "/peers"),
    api("GET", "/dicom-web/servers")]);
  const group = (label, kind, names) => names.length ? h("optgroup", { label }, names.map((n) => h("option", { value: `${kind}:${n}` }, n))) : null;
  const target = h("select", { name: "target" }, group("DICOM modalities", "modality", modalities),
    group("Orthanc peers", "peer", peers), group("DICOMweb servers", "dicomweb", servers));
  if (!modalities.length && !peers.length && !servers.length) {
    toast("No modality, peer or DICOMweb server is configured: add one first", true);
    return;
  }
  const paths = { modality: (n) => `/modalities/${enc(n)}/store`, peer: (n) => `/peers/${enc(n)}/store`,
    dicomweb: (n) => `/dicom-web/servers/${enc(n)}/stow` };
  modal(`Send this ${LEVELS[route].toLowerCase()}`, [field("To", target)], "Send", async () => {
    const [kind, ...rest] = target.value.split(":");
    started(await api("POST", paths[kind](rest.join(":")), { Resources: [id], Asynchronous: true }));
  });
}

/** The buttons of these dialogs for a resource's action bar. */
export function resourceActions(route, id) {
  return [h("button", { "data-action": "modify", onclick: () => modificationDialog(route, id, false) }, "Modify…"),
    h("button", { "data-action": "anonymize", onclick: () => modificationDialog(route, id, true) }, "Anonymize…"),
    h("button", { "data-action": "send", onclick: () => sendDialog(route, id).catch((e) => toast(e.message, true)) }, "Send to…")];
}
