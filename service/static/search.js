"use strict";
// The search page: one query, three /search calls (bm25, knn, hybrid) shown side by side.
// Whatever the API returns goes into the page through textContent and DOM nodes, never
// innerHTML: titles, categories and brands are producer input.

const MODES = ["bm25", "knn", "hybrid"];
const FILTERS = ["category", "brand", "price_min", "price_max"];
const PAGE_SIZE = 12;
const LEGS = { bm25: "BM25", knn: "kNN" };

const form = document.getElementById("search");
const field = (name) => form.elements.namedItem(name);
const knownCategories = new Set();
let generation = 0; // each search gets a number; answers to an older one are dropped

// An element with attributes and children; strings become text nodes.
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function number(x) {
  return Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(3);
}

// The query and filters in the form, as /search parameters.
function formParams() {
  const params = new URLSearchParams();
  const q = field("q").value.trim();
  if (q) params.set("q", q);
  for (const name of FILTERS) {
    const value = field(name).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

function search() {
  const params = formParams();
  history.replaceState(null, "", params.toString() ? `?${params}` : location.pathname);
  if (!params.has("q")) return;
  const run = ++generation;
  for (const mode of MODES) loadColumn(mode, params, run, {});
}

// Fetch one page of one mode into its column; `next` is {} (first page), {cursor} or {page}.
// The hybrid column asks for a cursor (cursor=new), so that "More" neither repeats nor skips a
// product while the index changes; the others page by number.
async function loadColumn(mode, params, run, next) {
  const column = document.getElementById(`col-${mode}`);
  const list = column.querySelector(".cards");
  const status = column.querySelector(".status");
  const more = column.querySelector(".more");
  const appending = Boolean(next.cursor || next.page);
  const query = new URLSearchParams(params);
  query.set("mode", mode);
  query.set("size", PAGE_SIZE);
  if (next.cursor) query.set("cursor", next.cursor);
  else if (mode === "hybrid" && !next.page) query.set("cursor", "new");
  if (next.page) query.set("page", next.page);
  column.dataset.state = "loading";
  column.dataset.request = query.toString();
  more.hidden = true;
  status.textContent = "Searching…";

  let body;
  try {
    const answer = await fetch(`/search?${query}`);
    const text = await answer.text();
    // a proxy's HTML error page is cut short; the service's own JSON detail is shown whole
    try { body = JSON.parse(text); } catch { body = { detail: text.slice(0, 300) }; }
    if (!answer.ok) throw new Error(`${answer.status}: ${describe(body.detail)}`);
  } catch (error) {
    if (run !== generation) return;
    if (!appending) list.replaceChildren();
    status.textContent = `Search failed (${error.message})`;
    column.dataset.state = "error";
    return;
  }
  if (run !== generation) return;

  const cards = body.hits.map((hit) => card(hit, mode));
  if (appending) list.append(...cards); else list.replaceChildren(...cards);
  status.textContent = summary(body, list.children.length);
  const following = nextPage(body, next, query.has("cursor"));
  more.hidden = !following;
  more.onclick = () => loadColumn(mode, params, run, following);
  if (mode === "hybrid" && !appending) showFacets(body.facets);
  updateCategoryList(body);
  column.dataset.state = "done";
}

// The page after this one: the answer's next_cursor; none when a cursor's list has ended;
// else (no cursor asked for, or a server without cursors) the next page number.
function nextPage(body, current, askedForCursor) {
  if (body.next_cursor) return { cursor: body.next_cursor };
  if (askedForCursor && "next_cursor" in body) return null;
  return body.hits.length === PAGE_SIZE ? { page: (current.page || 1) + 1 } : null;
}

function describe(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(-1)[0]}: ${d.msg}`).join("; ");
  return "unexpected answer";
}

function summary(body, shown) {
  const found = typeof body.total === "number"
    ? `${body.total}${body.total_is_lower_bound ? "+" : ""} results`
    : `${body.candidates} candidates`;
  const took = body.timings_ms && body.timings_ms.total;
  return `${found}, ${shown} shown${took ? `, ${Math.round(took)} ms` : ""}`;
}

function card(hit, mode) {
  const meta = [hit.category, hit.brand, typeof hit.price === "number" ? `$${hit.price.toFixed(2)}` : null,
    `#${hit.product_id}`].filter(Boolean).join(" · ");
  const item = el("li", { class: "card", "data-product-id": hit.product_id, "data-category": hit.category || "" });
  item.append(
    photo(hit, item),
    el("div", { class: "body" },
      el("span", { class: "title" }, hit.title || "(untitled)"),
      el("span", { class: "meta" }, meta),
      scores(hit, mode)));
  return item;
}

// The hit's photo from /images/...; a placeholder for a product without one, or when it fails.
function photo(hit, item) {
  if (!hit.image) {
    item.dataset.photo = "none";
    return el("div", { class: "nophoto" }, "no photo");
  }
  const image = el("img", { alt: hit.title || "", decoding: "async" });
  image.addEventListener("error", () => {
    item.dataset.photo = "failed";
    image.replaceWith(el("div", { class: "nophoto" }, "photo unavailable"));
  });
  image.src = `/images/${hit.image.split("/").map(encodeURIComponent).join("/")}`;
  return image;
}

// The fused score, then per leg: raw score, normalised contribution and rank in that leg.
function scores(hit, mode) {
  const box = el("div", { class: "scores" },
    el("span", { class: "fused", title: "the score this column ranks by" },
      `${mode === "hybrid" ? "blended" : "score"} ${number(hit.score)}`));
  for (const [leg, label] of Object.entries(LEGS)) {
    if (mode !== "hybrid" && mode !== leg) continue;
    const raw = hit.leg_scores[leg];
    if (raw === undefined) {
      box.append(el("span", { class: leg, title: `not among the ${label} leg's candidates` }, `${label} –`));
      continue;
    }
    const share = hit.normalized[leg];
    const rank = hit.ranks[leg];
    const text = `${label} ${number(raw)}${share !== undefined && mode === "hybrid" ? ` → ${number(share)}` : ""}` +
      `${rank ? ` #${rank}` : ""}`;
    box.append(el("span", { class: leg, title: `${label}: raw score, normalised share, rank in the leg` }, text));
  }
  return box;
}

// Facets of the hybrid answer, as buttons that set a filter (and clear it when active).
function showFacets(facets) {
  const box = document.getElementById("facets");
  box.replaceChildren();
  const groups = [["category", "Category"], ["brand", "Brand"], ["price", "Price"]];
  for (const [name, label] of groups) {
    const buckets = (facets && facets[name]) || [];
    if (!buckets.length) continue;
    const group = el("div", { class: "group" }, el("span", {}, label));
    for (const bucket of buckets) group.append(facetButton(name, bucket));
    box.append(group);
  }
  box.hidden = !box.children.length;
}

function facetButton(name, bucket) {
  const active = name === "price"
    ? field("price_min").value === String(bucket.from ?? "") && field("price_max").value === String(bucket.to ?? "")
    : field(name).value === bucket.value;
  const button = el("button", { type: "button", class: active ? "facet active" : "facet" },
    String(bucket.value), el("span", { class: "count" }, String(bucket.count)));
  button.addEventListener("click", () => {
    if (name === "price") {
      field("price_min").value = active ? "" : (bucket.from ?? "");
      field("price_max").value = active ? "" : (bucket.to ?? "");
    } else {
      field(name).value = active ? "" : bucket.value;
    }
    search();
  });
  return button;
}

// Suggestions for the category box: every category (and its ancestors) seen so far.
function updateCategoryList(body) {
  const seen = body.hits.map((hit) => hit.category);
  for (const bucket of (body.facets && body.facets.category) || []) seen.push(bucket.value);
  let added = false;
  for (const category of seen.filter(Boolean)) {
    const parts = category.split(" > ");
    for (let i = 1; i <= parts.length; i++) {
      const path = parts.slice(0, i).join(" > ");
      if (!knownCategories.has(path)) { knownCategories.add(path); added = true; }
    }
  }
  if (added) {
    document.getElementById("categories").replaceChildren(
      ...[...knownCategories].sort().map((value) => el("option", { value })));
  }
}

form.addEventListener("submit", (event) => { event.preventDefault(); search(); });
for (const name of FILTERS) field(name).addEventListener("change", search);
document.getElementById("clear-filters").addEventListener("click", () => {
  for (const name of FILTERS) field(name).value = "";
  search();
});

// A link to the page with ?q=...&category=... opens that search.
const initial = new URLSearchParams(location.search);
for (const name of ["q", ...FILTERS]) if (initial.has(name)) field(name).value = initial.get(name);
search();
