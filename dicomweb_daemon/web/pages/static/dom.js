// What every page uses: building elements, calling the API, messages, tables.
// Every DICOM string reaches the page as a text node (h() never parses HTML), so a PatientName
// holding markup shows as text.

export const API = location.pathname.replace(/ui\/.*$/, "").replace(/\/$/, "");  // the daemon's root, behind any proxy prefix
export const LEVELS = { patients: "Patient", studies: "Study", series: "Series", instances: "Instance" };

// -- DOM and API helpers ---------------------------------------------------------------------------
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function url(path) { return API + path; }
export function enc(id) { return encodeURIComponent(id); }

export class ApiError extends Error {}

export async function api(method, path, body, json = true) {
  const headers = { "X-Requested-With": "dicomweb-daemon" };  // the daemon refuses forged cross-site writes without it
  let payload = body;
  if (body !== undefined && typeof body !== "string" && !(body instanceof Blob)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const answer = await fetch(url(path), { method, headers, body: payload, credentials: "same-origin" });
  const text = await answer.text();
  if (!answer.ok) throw new ApiError(describeError(answer.status, text));
  if (!json) return text;
  return text ? JSON.parse(text) : null;
}

export function describeError(status, text) {
  try {
    const body = JSON.parse(text);
    return [body.Message, body.Details].filter(Boolean).join(": ") || `HTTP ${status}`;
  } catch (e) {
    return `HTTP ${status}`;
  }
}

export function toast(message, error = false) {
  const box = h("div", { class: error ? "toast error" : "toast", role: error ? "alert" : "status" }, message);
  document.getElementById("toasts").append(box);
  setTimeout(() => box.remove(), error ? 9000 : 4000);
}

export function confirmDialog(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

export function tag(resource, name) {
  return (resource.MainDicomTags || {})[name] || "";
}

export function dicomDate(value) {
  return /^\d{8}$/.test(value || "") ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6, 8)}` : value || "";
}

export function table(columns, rows, onOpen) {
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c[0])))),
    h("tbody", {}, rows.length ? rows.map((row) => h("tr", {
      class: onOpen ? "link" : null, "data-id": row.ID, onclick: onOpen ? () => onOpen(row) : null,
    }, columns.map((c) => h("td", {}, c[1](row))))) : h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, "Nothing here."))));
}

export function tagList(tags) {
  const entries = Object.entries(tags || {}).filter(([, v]) => typeof v !== "object");
  return h("dl", { class: "tags" }, entries.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
}

export function go(hash) { location.hash = hash; }

export function breadcrumbs(resource, level) {
  const parts = [h("a", { href: "#/" }, "Patients")];
  const chain = [["patients", resource.ParentPatient, "Patient"], ["studies", resource.ParentStudy, "Study"],
    ["series", resource.ParentSeries, "Series"]];
  for (const [route, id, name] of chain) {
    if (id) parts.push(" / ", h("a", { href: `#/${route}/${enc(id)}` }, name));
  }
  parts.push(" / ", level);
  return h("div", { class: "breadcrumbs" }, parts);
}

