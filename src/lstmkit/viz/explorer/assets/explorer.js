// lstmkit explorer: draws the record embedded in this page (every quantity of every unit,
// layer and token of one text, as the model computed it). Nothing here computes the model:
// the page only reads the numbers, colours them, and ranks units for a selected span.
// Plain ES2017 with no modules and no fetch, so the page opens from disk in any browser.
"use strict";
(function () {
  var DATA = JSON.parse(document.getElementById("data").textContent);
  var T = DATA.tokens.length, U = DATA.units, L = DATA.layers;
  var GATE_NAMES = { input: 1, forget: 1, output: 1, reset: 1, update: 1 };
  var LABELS = {
    input: "input gate i", forget: "forget gate f", output: "output gate o",
    candidate: "candidate", cell: "cell state C", hidden: "hidden state h",
    reset: "reset gate r", update: "update gate z",
  };
  var SVGNS = "http://www.w3.org/2000/svg";

  var state = { layer: 0, unit: 0, quantity: null, step: 0, selection: null, playing: null };

  // -- the numbers ------------------------------------------------------------------------

  var decoded = {};
  function quantity(name) {
    // base64 little-endian float32 -> Float32Array, decoded once, on first use
    if (!decoded[name]) {
      var raw = atob(DATA.quantities[name]);
      var bytes = new Uint8Array(raw.length);
      for (var k = 0; k < raw.length; k++) bytes[k] = raw.charCodeAt(k);
      decoded[name] = new Float32Array(bytes.buffer);
    }
    return decoded[name];
  }
  function value(name, layer, t, unit) {
    return quantity(name)[(layer * T + t) * U + unit];
  }
  function series(name, layer, unit) {
    var a = quantity(name), out = new Float32Array(T);
    for (var t = 0; t < T; t++) out[t] = a[(layer * T + t) * U + unit];
    return out;
  }
  function has(name) { return DATA.names.indexOf(name) >= 0; }
  function fmt(v) { return (v < 0 ? "−" : "") + Math.abs(v).toFixed(4); }
  function pct(p) { return (100 * p).toFixed(1) + "%"; }
  // all of a float32's digits (about 7 significant), for the hover boxes
  function exact(v) { return String(Number(v.toPrecision(7))).replace("-", "−"); }

  // -- colours ----------------------------------------------------------------------------

  function mix(a, b, w) {
    return [0, 1, 2].map(function (k) { return Math.round(a[k] + (b[k] - a[k]) * w); });
  }
  var WHITE = [255, 255, 255], RED = [178, 24, 43], BLUE = [33, 102, 172], GREEN = [26, 120, 60];
  // gates live in [0, 1]: white (closed) to green (open); signed quantities diverge from
  // white at 0 to red (positive) and blue (negative), scaled by the largest magnitude
  function colour(name, v, scale) {
    if (GATE_NAMES[name]) return mix(WHITE, GREEN, Math.min(1, Math.max(0, v)));
    var w = Math.min(1, Math.abs(v) / scale);
    return mix(WHITE, v >= 0 ? RED : BLUE, w);
  }
  function css(rgb) { return "rgb(" + rgb[0] + "," + rgb[1] + "," + rgb[2] + ")"; }
  function magnitude(values) {
    var m = 0;
    for (var k = 0; k < values.length; k++) m = Math.max(m, Math.abs(values[k]));
    return m > 0 ? m : 1;
  }
  function legend(el, name, scale) {
    var lo = GATE_NAMES[name] ? 0 : -scale, hi = GATE_NAMES[name] ? 1 : scale;
    var stops = [0, 0.25, 0.5, 0.75, 1].map(function (w) {
      return css(colour(name, lo + (hi - lo) * w, scale)) + " " + w * 100 + "%";
    });
    el.innerHTML = "";
    add(el, "span", { textContent: fmt(lo) });
    add(el, "span", { className: "bar", style: "background: linear-gradient(to right, " + stops.join(",") + ")" });
    add(el, "span", { textContent: fmt(hi) });
  }

  // -- small DOM helpers ------------------------------------------------------------------

  function $(id) { return document.getElementById(id); }
  function add(parent, tag, props) {
    var el = document.createElement(tag);
    for (var k in props) {
      if (k === "style") el.setAttribute("style", props[k]);
      else if (k.indexOf("data-") === 0) el.setAttribute(k, props[k]);
      else el[k] = props[k];
    }
    parent.appendChild(el);
    return el;
  }
  function svg(parent, tag, attrs, text) {
    var el = document.createElementNS(SVGNS, tag);
    for (var k in attrs) el.setAttribute(k, attrs[k]);
    if (text !== undefined) el.textContent = text;
    parent.appendChild(el);
    return el;
  }
  function each(selector, fn) { Array.prototype.forEach.call(document.querySelectorAll(selector), fn); }
  var tip = $("tooltip");
  function showTip(text, x, y, exact) {
    tip.textContent = text;
    tip.setAttribute("data-value", exact === undefined ? "" : String(exact));
    tip.hidden = false;
    tip.style.left = Math.min(x + 14, window.innerWidth - 260) + "px";
    tip.style.top = y + 16 + "px";
  }
  function hideTip() { tip.hidden = true; }
  function tokenText(tok) {
    if (DATA.level === "char") return tok === " " ? "␣" : tok === "\n" ? "↵" : tok === "\t" ? "⇥" : tok;
    return tok === "\n" ? "↵" : tok;
  }

  // -- the cell diagrams (Olah 2015's drawing of one step) ---------------------------------

  // Each diagram is a list of shapes; wires carry a quantity whose size sets their width,
  // labels show one number of this step (data-value holds it exactly, the text rounds it).
  var diagram = $("diagram");
  var labels = {};   // key -> text element
  var wires = [];    // {el, key}: width follows |value|

  function label(key, x, y, anchor) {
    var t = svg(diagram, "text", { x: x, y: y, class: "value", "text-anchor": anchor || "start", id: "dv-" + key });
    labels[key] = t;
    return t;
  }
  function name(x, y, text, anchor) {
    return svg(diagram, "text", { x: x, y: y, class: "name", "text-anchor": anchor || "start" }, text);
  }
  function wire(d, key) {
    var w = svg(diagram, "path", { d: d, class: "wire", "stroke-width": 2 });
    if (key) {
      var f = svg(diagram, "path", { d: d, class: "flow", "stroke-width": 2 });
      wires.push({ el: f, key: key });
    }
    return w;
  }
  function box(x, y, text, key, kind) {
    var g = svg(diagram, "g", { id: "box-" + key });
    var r = svg(g, "rect", { x: x - 26, y: y - 16, width: 52, height: 32, rx: 4, class: "box", fill: "#fff3bf" });
    svg(g, "text", { x: x, y: y, class: "op" }, text);
    wires.push({ el: r, key: key, fill: kind });
    return g;
  }
  function node(x, y, op) {
    svg(diagram, "circle", { cx: x, cy: y, r: 13, class: "node" });
    svg(diagram, "text", { x: x, y: y, class: "op" }, op);
  }

  function drawLSTM(options) {
    // conveyor belt at y=70, h_{t-1} and x_t at the bottom, gates in between
    var belt = 70, gates = 230, bottom = 310;
    var forget = options.forget, coupled = DATA.cell === "cifg";
    wire("M40 " + belt + " H" + (forget ? 187 : 387), "cellprev");
    if (forget) { node(200, belt, "×"); wire("M213 " + belt + " H387", "kept"); }
    node(400, belt, "+");
    wire("M413 " + belt + " H740", "cell");
    wire("M40 " + bottom + " H600", "hiddenprev");
    wire("M110 350 V" + bottom, null);
    if (forget) { wire("M200 " + (gates - 16) + " V" + (belt + 13), "forget"); box(200, gates, coupled ? "1−i" : "σ", "forget", "gate"); }
    [200, 300, 400, 560].forEach(function (x) {  // every gate reads [h(t-1), x(t)]
      if (x !== 200 || forget) wire("M" + x + " " + bottom + " V" + (gates + 16), null);
    });
    box(300, gates, "σ", "input", "gate");
    box(400, gates, "tanh", "candidate", "signed");
    box(560, gates, "σ", "output", "gate");
    wire("M300 " + (gates - 16) + " V150 H387", "input");
    wire("M400 " + (gates - 16) + " V163", "candidate");
    node(400, 150, "×");
    wire("M400 137 V" + (belt + 13), "written");
    wire("M620 " + belt + " V108", "cell");
    svg(diagram, "ellipse", { cx: 620, cy: 125, rx: 26, ry: 15, class: "tanh-oval" });
    svg(diagram, "text", { x: 620, y: 125, class: "op" }, "tanh");
    wire("M620 140 V177", "tanhcell");
    node(620, 190, "×");
    wire("M560 " + (gates - 16) + " V190 H607", "output");
    wire("M620 203 V" + bottom + " H740", "hidden");
    wire("M633 190 H700 V20 H740", "hidden");
    if (options.peephole) {
      [200, 300].forEach(function (x) { svg(diagram, "path", { d: "M" + (x - 18) + " " + belt + " V" + (gates - 16), class: "peep" }); });
      svg(diagram, "path", { d: "M680 " + belt + " V" + gates + " H586", class: "peep" });
      name(684, 160, "peepholes");
    }
    name(40, belt - 12, "C(t−1)"); label("cellprev", 40, belt + 22);
    name(740, belt - 12, "C(t)", "end"); label("cell", 740, belt + 22, "end");
    name(40, bottom - 10, "h(t−1)"); label("hiddenprev", 40, bottom + 22);
    name(740, bottom - 10, "h(t)", "end"); label("hidden", 740, bottom + 22, "end");
    name(120, 348, "x(t) ="); label("token", 170, 348);
    if (forget) { name(212, belt + 30, "f·C(t−1)"); label("kept", 212, belt + 46); }
    else name(120, belt + 30, "no forget gate: C(t−1) passes whole");
    name(412, 140, "i·C~"); label("written", 412, 156);
    name(592, 120, "tanh C(t)", "end"); label("tanhcell", 592, 136, "end");
    [["forget", 200], ["input", 300], ["candidate", 400], ["output", 560]].forEach(function (p) {
      if (!forget && p[0] === "forget") return;
      label(p[0], p[1], gates + 34, "middle");
    });
  }

  function drawGRU() {
    // h(t-1) runs along the top to h(t); z keeps part of it, (1 - z) lets the candidate in
    var top = 70, gates = 250, bottom = 320;
    wire("M40 " + top + " H387", "hiddenprev");
    node(400, top, "×");
    wire("M413 " + top + " H587", "kept");
    node(600, top, "+");
    wire("M613 " + top + " H740", "hidden");
    wire("M60 " + top + " V" + bottom + " H460", "hiddenprev");
    wire("M60 180 H447", "hiddenprev");
    wire("M110 350 V" + bottom, null);
    [180, 300, 460].forEach(function (x) { wire("M" + x + " " + bottom + " V" + (gates + 16), null); });
    box(180, gates, "σ", "reset", "gate");
    box(300, gates, "σ", "update", "gate");
    box(460, gates, "tanh", "candidate", "signed");
    wire("M180 " + (gates - 16) + " V205 H447", "reset");
    node(460, 195, "×");
    wire("M460 208 V" + (gates - 16), "reset");
    wire("M300 " + (gates - 16) + " V120 H400 V" + (top + 13), "update");
    wire("M400 120 H517", "update");
    node(530, 120, "1−");
    wire("M543 120 H600 V137", "update");
    node(600, 150, "×");
    wire("M486 " + gates + " H640 V150 H613", "candidate");
    wire("M600 137 V" + (top + 13), "written");
    name(40, top - 12, "h(t−1)"); label("hiddenprev", 68, top + 22);
    name(740, top - 12, "h(t)", "end"); label("hidden", 740, top + 22, "end");
    name(412, top + 30, "z·h(t−1)"); label("kept", 412, top + 46);
    name(652, 140, "(1−z)·n"); label("written", 652, 156);
    name(120, 348, "x(t) ="); label("token", 170, 348);
    [["reset", 180], ["update", 300], ["candidate", 460]].forEach(function (p) { label(p[0], p[1], gates + 34, "middle"); });
  }

  function drawRNN() {
    var mid = 190;
    wire("M40 " + mid + " H374", "hiddenprev");
    wire("M400 350 V" + (mid + 16), null);
    box(400, mid, "tanh", "hidden", "signed");
    wire("M426 " + mid + " H740", "hidden");
    name(40, mid - 12, "h(t−1)"); label("hiddenprev", 40, mid + 22);
    name(740, mid - 12, "h(t)", "end"); label("hidden", 740, mid + 22, "end");
    name(300, 348, "x(t) ="); label("token", 350, 348);
    name(40, 80, "h(t) = tanh(W x(t) + U h(t−1) + b): the whole state is rewritten at every step");
  }

  // The cells whose equations the drawings and the equation box show: a variant with other
  // equations (a removed gate, no tanh, Cho's reset, a layer norm) gets the generic view,
  // the numbers by name, rather than a picture of a cell it is not.
  var DRAWN = { lstm: "lstm", peephole: "lstm", cifg: "lstm", "lstm-noforget": "lstm", gru: "gru", rnn: "rnn" };
  var DIAGRAM = DRAWN[DATA.cell] || null;

  function buildDiagram() {
    diagram.innerHTML = "";
    labels = {}; wires = [];
    if (DIAGRAM === "lstm") drawLSTM({ forget: has("forget"), peephole: DATA.cell === "peephole" });
    else if (DIAGRAM === "gru") drawGRU();
    else if (DIAGRAM === "rnn") drawRNN();
    else name(40, 80, "no diagram of the " + DATA.cell + " cell yet: this step's numbers are in the equations below");
    name(40, 24, "moving dashes: red carries a positive value, blue a negative one, thicker a larger one;");
    name(40, 40, "gate boxes: white is closed (0), green open (1)");
  }

  // This step's numbers for the chosen unit, by the names the diagram uses.
  function stepValues(layer, t, unit) {
    var v = {};
    DATA.names.forEach(function (n) { v[n] = value(n, layer, t, unit); });
    v.hiddenprev = t > 0 ? value("hidden", layer, t - 1, unit) : 0;
    if (DIAGRAM === "lstm") {
      v.cellprev = t > 0 ? value("cell", layer, t - 1, unit) : 0;
      v.kept = has("forget") ? v.forget * v.cellprev : v.cellprev;
      v.written = v.input * v.candidate;
      v.tanhcell = Math.tanh(v.cell);
    } else if (DIAGRAM === "gru") {
      v.kept = v.update * v.hiddenprev;
      v.written = (1 - v.update) * v.candidate;
    }
    return v;
  }

  function drawStep() {
    var t = state.step, v = stepValues(state.layer, t, state.unit);
    Object.keys(labels).forEach(function (key) {
      var el = labels[key];
      if (key === "token") { el.textContent = JSON.stringify(DATA.tokens[t]); return; }
      el.textContent = fmt(v[key]);
      el.setAttribute("data-value", String(v[key]));
    });
    wires.forEach(function (w) {
      var x = v[w.key];
      if (x === undefined) return;
      if (w.fill === "gate") w.el.setAttribute("fill", css(colour("input", x, 1)));
      else if (w.fill === "signed") w.el.setAttribute("fill", css(colour("cell", x, 1)));
      else {
        // a wire's flow is as strong as what it carries: tanh-bounded values up to 1 unit,
        // the unbounded cell state saturating at 2
        var size = Math.min(1, Math.abs(x) / (w.key.indexOf("cell") === 0 || w.key === "kept" ? 2 : 1));
        w.el.style.strokeWidth = (1 + 5 * size).toFixed(2);
        w.el.style.strokeOpacity = (0.15 + 0.85 * size).toFixed(2);
        w.el.style.stroke = x >= 0 ? "#cf222e" : "#0969da";
      }
    });
    drawEquations(v);
  }

  function drawEquations(v) {
    var box = $("equations"), rows = [];
    box.innerHTML = "";
    if (DIAGRAM === "lstm") {
      if (has("forget")) rows.push(["forget", "f = " + (DATA.cell === "cifg" ? "1 − i" : "σ(W_f·[h(t−1), x(t)] + b_f)") + " = " + fmt(v.forget)]);
      rows.push(["input", "i = σ(W_i·[h(t−1), x(t)] + b_i) = " + fmt(v.input)]);
      rows.push(["candidate", "C~ = tanh(W_C·[h(t−1), x(t)] + b_C) = " + fmt(v.candidate)]);
      rows.push(["cell", "C(t) = " + (has("forget") ? "f·C(t−1)" : "C(t−1)") + " + i·C~ = " + fmt(v.kept) + " + " + fmt(v.written) + " = " + fmt(v.cell)]);
      rows.push(["output", "o = σ(W_o·[h(t−1), x(t)] + b_o) = " + fmt(v.output)]);
      rows.push(["hidden", "h(t) = o·tanh(C(t)) = " + fmt(v.output) + " · " + fmt(v.tanhcell) + " = " + fmt(v.hidden)]);
    } else if (DIAGRAM === "gru") {
      rows.push(["reset", "r = σ(W_r x + b_r + U_r h(t−1) + c_r) = " + fmt(v.reset)]);
      rows.push(["update", "z = σ(W_z x + b_z + U_z h(t−1) + c_z) = " + fmt(v.update)]);
      rows.push(["candidate", "n = tanh(W_n x + b_n + r·(U_n h(t−1) + c_n)) = " + fmt(v.candidate)]);
      rows.push(["hidden", "h(t) = (1−z)·n + z·h(t−1) = " + fmt(v.written) + " + " + fmt(v.kept) + " = " + fmt(v.hidden)]);
    } else if (DIAGRAM === "rnn") {
      rows.push(["hidden", "h(t) = tanh(W x(t) + U h(t−1) + b) = " + fmt(v.hidden)]);
    } else {  // a family without a drawing: each quantity the record has, by name
      DATA.names.forEach(function (n) { rows.push([n, "= " + fmt(v[n])]); });
    }
    rows.forEach(function (r) {
      var d = add(box, "div", { id: "eq-" + r[0] });
      add(d, "span", { className: "eq-name", textContent: LABELS[r[0]] || r[0] });
      add(d, "span", { textContent: " " + r[1] });
    });
  }

  // -- the token strip --------------------------------------------------------------------

  var strip = $("strip"), tokenEls = [];
  function buildStrip() {
    strip.className = DATA.level === "word" ? "words" : "chars";
    DATA.tokens.forEach(function (tok, t) {
      var el = add(strip, "span", { className: "tok", textContent: tokenText(tok), "data-t": t });
      if (tokenText(tok) !== tok) el.classList.add("mark");
      tokenEls.push(el);
      if (tok === "\n") add(strip, "br", {});
    });
    var dragging = null;
    strip.addEventListener("mousedown", function (e) {
      var t = tokenAt(e.target);
      if (t === null) return;
      dragging = { from: t, moved: false };
      e.preventDefault();
    });
    strip.addEventListener("mouseover", function (e) {
      var t = tokenAt(e.target);
      if (t === null) return;
      var v = value(state.quantity, state.layer, t, state.unit);
      showTip("token " + t + " " + JSON.stringify(DATA.tokens[t]) + "\n" + state.quantity + " of unit " + state.unit + " = " + exact(v), e.clientX, e.clientY, v);
      if (dragging && t !== dragging.from) { dragging.moved = true; select(dragging.from, t); }
    });
    strip.addEventListener("mouseleave", hideTip);
    document.addEventListener("mouseup", function (e) {
      if (!dragging) return;
      var t = tokenAt(e.target);
      if (dragging.moved) { if (t !== null) select(dragging.from, t); rankUnits(); }
      else if (t !== null) setStep(t);
      dragging = null;
    });
  }
  function tokenAt(el) {
    return el && el.classList && el.classList.contains("tok") ? Number(el.getAttribute("data-t")) : null;
  }
  function colourStrip() {
    var s = series(state.quantity, state.layer, state.unit), scale = magnitude(s);
    for (var t = 0; t < T; t++) tokenEls[t].style.backgroundColor = css(colour(state.quantity, s[t], scale));
    legend($("strip-legend"), state.quantity, scale);
  }
  function markStep(previous) {
    if (previous !== undefined && tokenEls[previous]) tokenEls[previous].classList.remove("current");
    tokenEls[state.step].classList.add("current");
  }

  // -- the units x time matrix ------------------------------------------------------------

  var matrix = $("matrix"), marks = $("matrix-marks");
  function drawMatrix() {
    var a = quantity(state.quantity), base = state.layer * T * U;
    var scale = magnitude(a.subarray(base, base + T * U));
    matrix.width = T; matrix.height = U;
    var ctx = matrix.getContext("2d"), img = ctx.createImageData(T, U), px = img.data;
    for (var t = 0; t < T; t++) {
      for (var u = 0; u < U; u++) {
        var c = colour(state.quantity, a[base + t * U + u], scale), k = 4 * (u * T + t);
        px[k] = c[0]; px[k + 1] = c[1]; px[k + 2] = c[2]; px[k + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    matrix.style.height = marks.style.height = Math.min(520, Math.max(120, 2 * U)) + "px";
    legend($("matrix-legend"), state.quantity, scale);
    drawMarks();
  }
  function drawMarks() {
    var box = matrix.getBoundingClientRect();
    marks.width = Math.max(1, Math.round(box.width)); marks.height = Math.max(1, Math.round(box.height));
    var ctx = marks.getContext("2d"), sx = marks.width / T, sy = marks.height / U;
    ctx.clearRect(0, 0, marks.width, marks.height);
    if (state.selection) {
      ctx.fillStyle = "rgba(255, 211, 61, 0.25)";
      ctx.fillRect(state.selection[0] * sx, 0, (state.selection[1] - state.selection[0]) * sx, marks.height);
    }
    ctx.strokeStyle = "#1f2328"; ctx.lineWidth = 1;
    ctx.strokeRect(state.step * sx, 0, Math.max(sx, 1), marks.height);
    ctx.strokeRect(0, state.unit * sy, marks.width, Math.max(sy, 1));
  }
  function matrixCell(e) {
    var box = matrix.getBoundingClientRect();
    var t = Math.floor((e.clientX - box.left) / box.width * T), u = Math.floor((e.clientY - box.top) / box.height * U);
    return [Math.min(T - 1, Math.max(0, t)), Math.min(U - 1, Math.max(0, u))];
  }
  matrix.addEventListener("mousemove", function (e) {
    var c = matrixCell(e), v = value(state.quantity, state.layer, c[0], c[1]);
    showTip("token " + c[0] + " " + JSON.stringify(DATA.tokens[c[0]]) + ", unit " + c[1] + "\n" + state.quantity + " = " + exact(v), e.clientX, e.clientY, v);
  });
  matrix.addEventListener("mouseleave", hideTip);
  matrix.addEventListener("click", function (e) { var c = matrixCell(e); setUnit(c[1]); setStep(c[0]); });

  // -- span selection and unit ranking ----------------------------------------------------

  function select(a, b) {
    var lo = Math.min(a, b), hi = Math.max(a, b) + 1;
    if (state.selection) for (var t = state.selection[0]; t < state.selection[1]; t++) tokenEls[t].classList.remove("selected");
    state.selection = [lo, hi];
    for (var s = lo; s < hi; s++) tokenEls[s].classList.add("selected");
    drawMarks();
  }
  // The score of lstmkit.lm.record.span_scores, in the page: each unit scaled to [0, 1] over
  // the text, mean inside the span minus mean outside.
  function spanScores(name, layer, lo, hi) {
    var a = quantity(name), base = layer * T * U, scores = new Float64Array(U);
    var min = new Float64Array(U).fill(Infinity), max = new Float64Array(U).fill(-Infinity);
    var sumIn = new Float64Array(U), sumOut = new Float64Array(U), t, u;
    for (t = 0; t < T; t++) for (u = 0; u < U; u++) {
      var x = a[base + t * U + u];
      if (x < min[u]) min[u] = x;
      if (x > max[u]) max[u] = x;
    }
    for (t = 0; t < T; t++) {
      var inside = t >= lo && t < hi, sum = inside ? sumIn : sumOut;
      for (u = 0; u < U; u++) {
        var width = max[u] > min[u] ? max[u] - min[u] : 1;
        sum[u] += (a[base + t * U + u] - min[u]) / width;
      }
    }
    for (u = 0; u < U; u++) scores[u] = sumIn[u] / (hi - lo) - sumOut[u] / (T - (hi - lo));
    return scores;
  }
  function rankUnits() {
    var list = $("ranking");
    list.innerHTML = "";
    if (!state.selection) return;
    var lo = state.selection[0], hi = state.selection[1];
    var shown = DATA.tokens.slice(lo, Math.min(hi, lo + 12)).join(DATA.level === "word" ? " " : "");
    $("span-label").textContent = "Selected tokens " + lo + " to " + (hi - 1) + ": " + JSON.stringify(shown + (hi - lo > 12 ? "…" : "")) + (hi - lo === T ? " (the whole text: select less to compare)" : "");
    if (hi - lo === T) return;
    var scores = spanScores(state.quantity, state.layer, lo, hi);
    var order = Array.from(scores.keys()).sort(function (a, b) { return Math.abs(scores[b]) - Math.abs(scores[a]) || a - b; });
    order.slice(0, 10).forEach(function (u) {
      var li = add(list, "li", { "data-unit": u, "data-score": String(scores[u]) });
      if (u === state.unit) li.classList.add("chosen");
      add(li, "span", { className: "score", textContent: (scores[u] >= 0 ? "+" : "−") + Math.abs(scores[u]).toFixed(3) });
      add(li, "span", { className: "uname", textContent: "unit " + u + (scores[u] >= 0 ? " (on inside)" : " (off inside)") });
      sparkline(add(li, "canvas", { width: 240, height: 24 }), u, lo, hi);
      li.addEventListener("click", function () { setUnit(u); });
    });
  }
  function sparkline(canvas, unit, lo, hi) {
    var s = series(state.quantity, state.layer, unit), ctx = canvas.getContext("2d");
    var min = Math.min.apply(null, s), max = Math.max.apply(null, s), w = canvas.width, h = canvas.height;
    ctx.fillStyle = "rgba(255, 211, 61, 0.5)";
    ctx.fillRect(lo / T * w, 0, (hi - lo) / T * w, h);
    ctx.beginPath();
    for (var t = 0; t < T; t++) {
      var y = h - 2 - (max > min ? (s[t] - min) / (max - min) : 0) * (h - 4);
      if (t === 0) ctx.moveTo(0, y); else ctx.lineTo(t / Math.max(1, T - 1) * w, y);
    }
    ctx.strokeStyle = "#0969da"; ctx.stroke();
  }

  // -- gate saturation --------------------------------------------------------------------

  var dots = {};
  function drawSaturation() {
    var box = $("saturation");
    box.innerHTML = "";
    dots = {};
    if (!DATA.gates.length) { box.textContent = "A plain RNN has no gates."; return; }
    DATA.gates.forEach(function (gate) {
      var fig = add(box, "figure", {}), size = 220, pad = 28;
      add(fig, "figcaption", { textContent: LABELS[gate] });
      var s = svg(fig, "svg", { width: size + pad, height: size + pad, "data-gate": gate });
      svg(s, "line", { x1: pad, y1: size, x2: size + pad, y2: size, class: "axis" });
      svg(s, "line", { x1: pad, y1: 0, x2: pad, y2: size, class: "axis" });
      svg(s, "line", { x1: pad, y1: size, x2: size + pad, y2: 0, class: "axis", "stroke-dasharray": "2 3" });
      svg(s, "text", { x: pad + size / 2, y: size + 22, "text-anchor": "middle" }, "fraction < 0.1 (closed)");
      svg(s, "text", { x: 10, y: size / 2, "text-anchor": "middle", transform: "rotate(-90 10 " + size / 2 + ")" }, "fraction > 0.9 (open)");
      var low = DATA.saturation[gate].low[state.layer], high = DATA.saturation[gate].high[state.layer];
      dots[gate] = [];
      for (var u = 0; u < U; u++) {
        var c = svg(s, "circle", { cx: pad + low[u] * size, cy: size - high[u] * size, r: 3, "data-unit": u });
        c.addEventListener("mouseover", hoverDot.bind(null, gate, u));
        c.addEventListener("mouseleave", hideTip);
        c.addEventListener("click", setUnit.bind(null, u));
        dots[gate].push(c);
      }
    });
    markDots();
  }
  function hoverDot(gate, u, e) {
    var sat = DATA.saturation[gate];
    showTip("unit " + u + " " + gate + ": closed " + pct(sat.low[state.layer][u]) + ", open " + pct(sat.high[state.layer][u]), e.clientX, e.clientY);
  }
  function markDots(previous) {
    DATA.gates.forEach(function (gate) {
      if (previous !== undefined) dots[gate][previous].classList.remove("chosen");
      var dot = dots[gate][state.unit];
      dot.classList.add("chosen");
      dot.parentNode.appendChild(dot); // drawn last, on top of the others
    });
    var p = $("saturation-unit");
    p.innerHTML = "";
    DATA.gates.forEach(function (gate) {
      var sat = DATA.saturation[gate];
      add(p, "span", { id: "sat-" + gate, "data-low": String(sat.low[state.layer][state.unit]), "data-high": String(sat.high[state.layer][state.unit]),
        textContent: "unit " + state.unit + " " + gate + ": closed " + pct(sat.low[state.layer][state.unit]) + ", open " + pct(sat.high[state.layer][state.unit]) + ".  " });
    });
  }

  // -- predictions ------------------------------------------------------------------------

  function drawPredictions() {
    var t = state.step, list = $("predictions");
    var upTo = DATA.tokens.slice(Math.max(0, t - 8), t + 1).join(DATA.level === "word" ? " " : "");
    $("after-label").textContent = "After reading " + (t > 8 ? "…" : "") + JSON.stringify(upTo) + ":";
    list.innerHTML = "";
    DATA.predictions[t].forEach(function (pair) {
      var li = add(list, "li", { "data-token": pair[0], "data-p": String(pair[1]) });
      add(li, "span", { className: "ptok", textContent: JSON.stringify(pair[0]) });
      add(li, "span", { className: "pbar", style: "width:" + Math.max(1, 160 * pair[1]).toFixed(1) + "px" });
      add(li, "span", { textContent: pct(pair[1]) });
    });
    var next = $("actual-next");
    if (t < T - 1) {
      var p = DATA.nextProbability[t];
      next.textContent = "The text goes on with " + JSON.stringify(DATA.tokens[t + 1]) + ", to which the model gave " + pct(p) + ".";
      next.setAttribute("data-p", String(p));
    } else { next.textContent = "The text ends here."; next.removeAttribute("data-p"); }
  }

  // -- state changes ----------------------------------------------------------------------

  function setStep(t) {
    t = Math.max(0, Math.min(T - 1, t));
    var previous = state.step;
    state.step = t;
    markStep(previous);
    $("step-label").textContent = "step " + t + " of " + (T - 1) + ": " + JSON.stringify(DATA.tokens[t]);
    drawStep();
    drawMarks();
    drawPredictions();
  }
  function setUnit(u) {
    u = Math.max(0, Math.min(U - 1, Math.round(Number(u)) || 0));
    var previous = state.unit;
    state.unit = u;
    $("unit").value = u;
    each(".unit-no", function (el) { el.textContent = u; });
    colourStrip();
    drawStep();
    drawMarks();
    markDots(previous);
    each("#ranking li", function (li) { li.classList.toggle("chosen", Number(li.getAttribute("data-unit")) === u); });
  }
  function setLayer(layer) {
    state.layer = layer;
    each(".layer-no", function (el) { el.textContent = layer; });
    drawMatrix(); colourStrip(); drawStep(); drawSaturation(); rankUnits();
  }
  function setQuantity(q) {
    state.quantity = q;
    each(".quantity-name", function (el) { el.textContent = LABELS[q] || q; });
    drawMatrix(); colourStrip(); rankUnits();
  }
  function play() {
    if (state.playing) { clearInterval(state.playing); state.playing = null; $("play").textContent = "▶ play"; return; }
    if (state.step >= T - 1) setStep(0);
    $("play").textContent = "⏸ pause";
    state.playing = setInterval(function () {
      if (state.step >= T - 1) { play(); return; }
      setStep(state.step + 1);
    }, 1000 / Number($("speed").value));
  }

  // -- start ------------------------------------------------------------------------------

  function init() {
    $("run-info").textContent = DATA.title + " · " + DATA.cell + " · " + L + " layer" + (L > 1 ? "s" : "") + " × " + U + " units · " + T + " " + (DATA.level === "word" ? "words" : "characters");
    for (var k = 0; k < L; k++) add($("layer"), "option", { value: k, textContent: String(k) });
    DATA.names.forEach(function (n) { add($("quantity"), "option", { value: n, textContent: LABELS[n] || n }); });
    $("unit").max = U - 1;
    state.quantity = has("cell") ? "cell" : "hidden";
    $("quantity").value = state.quantity;
    buildDiagram();
    buildStrip();
    each(".quantity-name", function (el) { el.textContent = LABELS[state.quantity]; });
    each(".layer-no", function (el) { el.textContent = 0; });
    drawMatrix();
    drawSaturation();
    setUnit(0);
    setStep(0);
    if (DATA.selection) { select(DATA.selection[0], DATA.selection[1] - 1); rankUnits(); var best = $("ranking").firstChild; if (best) setUnit(Number(best.getAttribute("data-unit"))); }

    // after a choice the focus goes back to the page, so the arrow keys step again
    $("layer").addEventListener("change", function (e) { setLayer(Number(e.target.value)); e.target.blur(); });
    $("quantity").addEventListener("change", function (e) { setQuantity(e.target.value); e.target.blur(); });
    $("unit").addEventListener("change", function (e) { setUnit(e.target.value); e.target.blur(); });
    $("prev-unit").addEventListener("click", function () { setUnit(state.unit - 1); });
    $("next-unit").addEventListener("click", function () { setUnit(state.unit + 1); });
    $("first").addEventListener("click", function () { setStep(0); });
    $("back").addEventListener("click", function () { setStep(state.step - 1); });
    $("forward").addEventListener("click", function () { setStep(state.step + 1); });
    $("last").addEventListener("click", function () { setStep(T - 1); });
    $("play").addEventListener("click", play);
    $("speed").addEventListener("change", function (e) {
      if (state.playing) { play(); play(); }  // pause and play again at the new speed
      e.target.blur();
    });
    window.addEventListener("resize", drawMarks);
    document.addEventListener("keydown", function (e) {
      var tag = e.target.tagName;
      if (tag === "INPUT" || tag === "SELECT" || e.ctrlKey || e.metaKey || e.altKey) return;
      var keys = {
        ArrowRight: function () { setStep(state.step + 1); }, ArrowLeft: function () { setStep(state.step - 1); },
        Home: function () { setStep(0); }, End: function () { setStep(T - 1); },
        ArrowUp: function () { setUnit(state.unit + 1); }, ArrowDown: function () { setUnit(state.unit - 1); },
        " ": play,
      };
      if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
    });
  }
  init();
})();
