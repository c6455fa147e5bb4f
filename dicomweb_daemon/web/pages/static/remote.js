// Work and the other servers: jobs with live progress; DICOM modalities (echo, query, retrieve);
// Orthanc peers; DICOMweb servers (browse, retrieve, delete when the server allows it).
import { API, api, confirmDialog, dicomDate, enc, h, table, toast } from "./dom.js";
import { modal } from "./dialogs.js";

let refresh = null;  // the one page that refreshes itself, while it is shown

/** Refresh ``update`` every ``seconds`` while the page at ``hash`` is shown (the last such page only). */
function whileShown(hash, seconds, update) {
  clearInterval(refresh);
  refresh = setInterval(() => {
    if (location.hash !== hash) clearInterval(refresh);
    else update().catch(() => {});
  }, seconds * 1000);
}

function action(label, run) {
  return h("button", {
    "data-action": label.toLowerCase(), onclick: async (event) => {
      event.stopPropagation();
      try { await run(); } catch (e) { toast(e.message, true); }
    },
  }, label);
}

function field(label, input) { return h("label", { class: "field" }, label, input); }

// -- jobs ---------------------------------------------------------------------------------------------
const JOB_ACTIONS = { Pending: ["Pause", "Cancel"], Running: ["Pause", "Cancel"], Paused: ["Resume", "Cancel"],
  Retry: ["Cancel"], Failure: ["Resubmit"], Success: [] };

export async function jobsView() {
  const holder = h("div", {});
  const hash = location.hash;
  const draw = async () => {
    const jobs = (await api("GET", "/jobs?expand")).reverse();  // newest first
    holder.replaceChildren(table([
      ["Type", (j) => j.Type], ["State", (j) => h("span", { class: `state ${j.State}`, "data-state": j.State }, j.State)],
      ["Progress", (j) => h("progress", { max: 100, value: j.Progress || 0, title: `${j.Progress || 0} %` })],
      ["Created", (j) => j.CreationTime.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d).*$/, "$1-$2-$3 $4:$5:$6")],
      ["Error", (j) => (j.State === "Failure" ? [j.ErrorDescription, j.ErrorDetails].filter(Boolean).join(": ") : "")],
      ["", (j) => [
        ...JOB_ACTIONS[j.State].map((a) => action(a, async () => { await api("POST", `/jobs/${enc(j.ID)}/${a.toLowerCase()}`, {}); await draw(); })),
        j.Type === "Archive" && j.State === "Success" ? h("a", { class: "button", href: `${API}/jobs/${enc(j.ID)}/archive`, download: "" }, "Download") : null,
        j.Type === "Media" && j.State === "Success" ? h("a", { class: "button", href: `${API}/jobs/${enc(j.ID)}/archive`, download: "" }, "Download") : null,
        j.Content && j.Content.ID && j.Content.Path ? h("a", { class: "button", href: `#${j.Content.Path}` }, "Open result") : null,
      ]]], jobs));
  };
  await draw();
  whileShown(hash, 1, draw);
  return [h("h1", {}, "Jobs"), holder];
}

// -- DICOM modalities ---------------------------------------------------------------------------------
export async function modalitiesView() {
  const modalities = await api("GET", "/modalities?expand");
  const rows = Object.entries(modalities).map(([name, m]) => ({ ID: name, ...m }));
  const results = h("div", {});
  return [h("h1", {}, "DICOM modalities"),
    table([["Name", (m) => m.ID], ["AET", (m) => m.AET], ["Host", (m) => m.Host], ["Port", (m) => m.Port],
      ["", (m) => [
        action("Echo", async () => {
          await api("POST", `/modalities/${enc(m.ID)}/echo`, {});
          toast(`C-ECHO to ${m.ID} succeeded`);
        }),
        action("Query", async () => queryDialog(m.ID, results)),
        action("Remove", async () => {
          if (!(await confirmDialog(`Remove the modality ${m.ID}?`))) return;
          await api("DELETE", `/modalities/${enc(m.ID)}`);
          dispatchEvent(new HashChangeEvent("hashchange"));
        })]]], rows),
    h("div", { class: "actions" }, action("Add…", async () => addDialog("modality"))),
    results];
}

function queryDialog(name, results) {
  const level = h("select", { name: "Level" }, ["Study", "Series", "Patient"].map((l) => h("option", { value: l }, l)));
  const inputs = Object.fromEntries(["PatientName", "PatientID", "StudyDate", "AccessionNumber", "ModalitiesInStudy"]
    .map((k) => [k, h("input", { name: k, placeholder: k === "StudyDate" ? "20240101-20241231" : "" })]));
  modal(`Query ${name} (C-FIND)`, [field("Level", level), ...Object.entries(inputs).map(([k, i]) => field(k, i))], "Query", async () => {
    const query = {};
    for (const [k, input] of Object.entries(inputs)) query[k] = input.value.trim();
    if (level.value !== "Study") delete query.ModalitiesInStudy;
    const created = await api("POST", `/modalities/${enc(name)}/query`, { Level: level.value, Query: query });
    const answers = await api("GET", `/queries/${enc(created.ID)}/answers?expand&simplify`);
    results.replaceChildren(h("h2", {}, `${answers.length} answers from ${name}`),
      table([["Patient", (a) => a.PatientName || ""], ["Patient ID", (a) => a.PatientID || ""],
        ["Date", (a) => dicomDate(a.StudyDate)], ["Description", (a) => a.StudyDescription || a.SeriesDescription || ""],
        ["Modality", (a) => a.ModalitiesInStudy || a.Modality || ""],
        ["", (a) => action("Retrieve", async () => {
          const job = await api("POST", `/queries/${enc(created.ID)}/answers/${a.ID}/retrieve`, { Synchronous: false });
          toast(`Retrieve started (job ${job.ID})`);
        })]], answers.map((a, i) => ({ ...a, ID: i }))));
  });
}

// -- Orthanc peers ------------------------------------------------------------------------------------
export async function peersView() {
  const peers = await api("GET", "/peers?expand");
  const rows = Object.entries(peers).map(([name, p]) => ({ ID: name, ...p }));
  return [h("h1", {}, "Orthanc peers"),
    table([["Name", (p) => p.ID], ["URL", (p) => p.Url], ["User", (p) => p.Username || ""],
      ["", (p) => [
        action("Test", async () => {
          const system = await api("GET", `/peers/${enc(p.ID)}/system`);
          toast(`${p.ID} answers: ${system.Name || "Orthanc"} ${system.Version || ""}`);
        }),
        action("Remove", async () => {
          if (!(await confirmDialog(`Remove the peer ${p.ID}?`))) return;
          await api("DELETE", `/peers/${enc(p.ID)}`);
          dispatchEvent(new HashChangeEvent("hashchange"));
        })]]], rows),
    h("div", { class: "actions" }, action("Add…", async () => addDialog("peer")))];
}

// -- DICOMweb servers ---------------------------------------------------------------------------------
export async function dicomwebView(params) {
  const servers = await api("GET", "/dicom-web/servers?expand");
  const rows = Object.entries(servers).map(([name, s]) => ({ ID: name, ...s }));
  const results = h("div", {});
  const chosen = params.get("server");
  if (chosen && servers[chosen]) await browseServer(chosen, servers[chosen], results, params);
  return [h("h1", {}, "DICOMweb servers"),
    table([["Name", (s) => s.ID], ["URL", (s) => s.Url], ["Delete", (s) => (s.HasDelete ? "allowed" : "")],
      ["", (s) => [
        h("a", { class: "button", href: `#/dicomweb?server=${enc(s.ID)}`, "data-action": "browse" }, "Browse"),
        action("Remove", async () => {
          if (!(await confirmDialog(`Remove the server ${s.ID}?`))) return;
          await api("DELETE", `/dicom-web/servers/${enc(s.ID)}`);
          dispatchEvent(new HashChangeEvent("hashchange"));
        })]]], rows),
    h("div", { class: "actions" }, action("Add…", async () => addDialog("dicomweb"))),
    results];
}

function value(dataset, tagKey) {
  const element = dataset[tagKey];
  const first = element && element.Value && element.Value[0];
  if (first === undefined || first === null) return "";
  return typeof first === "object" ? first.Alphabetic || "" : String(first);
}

async function browseServer(name, server, results, params) {
  const name_ = h("input", { name: "PatientName", value: params.get("PatientName") || "" });
  const form = h("form", {
    class: "search", onsubmit: (event) => {
      event.preventDefault();
      location.hash = `#/dicomweb?server=${enc(name)}&PatientName=${enc(name_.value)}`;
    },
  }, h("label", {}, "Patient name", name_), h("label", {}, "\u00a0", h("button", { type: "submit" }, "Search")));
  const args = { limit: "100", includefield: "00081030,00080061" };
  if (params.get("PatientName")) args.PatientName = params.get("PatientName");
  const studies = await api("POST", `/dicom-web/servers/${enc(name)}/qido`, { Uri: "/studies", Arguments: args });
  const uid = (s) => value(s, "0020000D");
  results.replaceChildren(h("h2", {}, `Studies on ${name}`), form,
    table([["Patient", (s) => value(s, "00100010")], ["Patient ID", (s) => value(s, "00100020")],
      ["Date", (s) => dicomDate(value(s, "00080020"))], ["Description", (s) => value(s, "00081030")],
      ["Modalities", (s) => ((s["00080061"] || {}).Value || []).join(", ")],
      ["", (s) => [
        action("Retrieve", async () => {
          const job = await api("POST", `/dicom-web/servers/${enc(name)}/retrieve`, { Resources: [{ Study: uid(s) }], Asynchronous: true });
          toast(`Retrieve started (job ${job.ID})`);
        }),
        server.HasDelete ? action("Delete", async () => {
          if (!(await confirmDialog(`Delete this study on ${name}?`))) return;
          await api("POST", `/dicom-web/servers/${enc(name)}/delete`, { Resources: [{ Study: uid(s) }] });
          toast(`Study deleted on ${name}`);
          dispatchEvent(new HashChangeEvent("hashchange"));
        }) : null]]], studies.map((s) => ({ ...s, ID: uid(s) }))));
}

// -- adding a modality, a peer or a DICOMweb server ---------------------------------------------------
function addDialog(kind) {
  const name = h("input", { name: "Name", required: true });
  const inputs = kind === "modality"
    ? { AET: h("input", { name: "AET", required: true }), Host: h("input", { name: "Host", required: true, value: "127.0.0.1" }),
      Port: h("input", { name: "Port", type: "number", required: true, value: 104 }) }
    : { Url: h("input", { name: "Url", required: true, placeholder: "http://host:8042/" }),
      Username: h("input", { name: "Username" }), Password: h("input", { name: "Password", type: "password" }) };
  const hasDelete = h("input", { type: "checkbox", name: "HasDelete" });
  const fields = [field("Name", name), ...Object.entries(inputs).map(([k, i]) => field(k, i))];
  if (kind === "dicomweb") fields.push(field("The server accepts deletions (HasDelete)", hasDelete));
  const base = { modality: "/modalities", peer: "/peers", dicomweb: "/dicom-web/servers" }[kind];
  modal(`Add a ${kind === "dicomweb" ? "DICOMweb server" : kind}`, fields, "Add", async () => {
    const body = {};
    for (const [k, input] of Object.entries(inputs)) if (input.value) body[k] = k === "Port" ? Number(input.value) : input.value;
    if (kind === "dicomweb") body.HasDelete = hasDelete.checked;
    await api("PUT", `${base}/${enc(name.value.trim())}`, body);
    toast(`${name.value.trim()} added`);
    dispatchEvent(new HashChangeEvent("hashchange"));
  });
}
