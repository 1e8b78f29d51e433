/* The gate game. Plain ES2017 in one closure: no modules, no network, no fetch.
 *
 * The page's data (built in Python by lstmkit.viz.game.page) holds the levels' streams and
 * everything about the trained model. This script plays the player's side only: the LSTM
 * equations on the player's gates and the scoring, exactly as levels.play does in Python
 * (same float operations, same order), and draws the results beside the model's trace.
 */
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("data").textContent);
  var GATES = DATA.gates; // ["forget", "input", "output"]
  var GATE_KEYS = { f: 0, i: 1, o: 2 };
  var FACTS = {};
  DATA.facts.forEach(function (fact) { FACTS[fact.name] = fact; });
  var BELT_WORDS = 14; // words of the stream kept in view on the belt

  // -- data --------------------------------------------------------------------------------

  /** base64 little-endian float32 -> array of numbers (lossless). */
  function floats(base64) {
    var bytes = atob(base64);
    var view = new DataView(new ArrayBuffer(bytes.length));
    for (var k = 0; k < bytes.length; k++) view.setUint8(k, bytes.charCodeAt(k));
    var out = new Array(bytes.length / 4);
    for (var j = 0; j < out.length; j++) out[j] = view.getFloat32(4 * j, true);
    return out;
  }

  DATA.levels.forEach(function (level) {
    level.trace = {};
    Object.keys(level.model.units).forEach(function (fact) {
      var quantities = level.model.units[fact];
      level.trace[fact] = {};
      Object.keys(quantities).forEach(function (name) {
        level.trace[fact][name] = floats(quantities[name]);
      });
    });
    level.asked = {}; // step -> fact
    level.questions.forEach(function (q) { level.asked[q.step] = q.fact; });
  });

  // -- the player's LSTM and the scoring (mirrors levels.play) -----------------------------

  function candidate(word, fact) {
    var writes = DATA.words[word].writes;
    return Object.prototype.hasOwnProperty.call(writes, fact) ? writes[fact] : 0;
  }

  /** The answer a cell gives through its output gate; null when h = 0. */
  function readAnswer(fact, cell, output) {
    if (output === 0 || cell === 0) return null;
    if (fact.reading === "sign") return cell > 0 ? fact.answers[0] : fact.answers[1];
    return String(Math.floor(cell + 0.5));
  }

  var state = {
    mode: "play", // "play" while stepping, "results" after the level's last word
    level: 0,
    t: 0,
    cells: [],
    gates: [],
    selected: 0,
    history: [], // per step: {gates, cells, hidden}
    answers: [], // per question so far: {question, answer, right}
    leaks: 0,
    best: DATA.levels.map(function () { return null; }),
  };

  function currentLevel() { return DATA.levels[state.level]; }

  function startLevel(index) {
    var level = DATA.levels[index];
    state.mode = "play";
    state.level = index;
    state.t = 0;
    state.cells = level.facts.map(function () { return 0; });
    // Gates start in the resting position: keep the cell, let nothing in, show nothing.
    state.gates = level.facts.map(function () { return [1, 0, 0]; });
    state.selected = 0;
    state.history = [];
    state.answers = [];
    state.leaks = 0;
    document.getElementById("results").hidden = true;
    render();
  }

  function levelScore() {
    var right = state.answers.filter(function (a) { return a.right; }).length;
    return DATA.scoring.right * right - DATA.scoring.leak * state.leaks;
  }

  function totalScore() {
    return state.best.reduce(function (sum, s) { return sum + (s === null ? 0 : s); }, 0);
  }

  /** Apply the gates to the current word: one LSTM step for every cell. */
  function step() {
    if (state.mode !== "play") return;
    var level = currentLevel();
    var word = level.words[state.t];
    var asked = level.asked[state.t];
    var cells = [];
    var hidden = [];
    level.facts.forEach(function (fact, k) {
      var g = state.gates[k];
      var c = g[0] * state.cells[k] + g[1] * candidate(word, fact); // C = f*C + i*C~
      cells.push(c);
      hidden.push(g[2] * Math.tanh(c)); // h = o*tanh(C)
      if (g[2] === 1 && asked !== fact) state.leaks += 1;
    });
    state.cells = cells;
    state.history.push({ gates: state.gates.map(function (g) { return g.slice(); }), cells: cells, hidden: hidden });
    level.questions.forEach(function (q) {
      if (q.step !== state.t) return;
      var k = level.facts.indexOf(q.fact);
      var fact = FACTS[q.fact];
      var answer = readAnswer(fact, cells[k], state.gates[k][2]);
      state.answers.push({ question: q, answer: answer, right: answer === fact.answers[q.answer], h: hidden[k] });
    });
    state.t += 1;
    if (state.t === level.words.length) finishLevel();
    else render();
  }

  function finishLevel() {
    state.mode = "results";
    var score = levelScore();
    var best = state.best[state.level];
    state.best[state.level] = best === null ? score : Math.max(best, score);
    render();
    renderResults();
    var results = document.getElementById("results");
    results.hidden = false;
    if (results.scrollIntoView) results.scrollIntoView({ block: "start" });
  }

  function passed() {
    return state.answers.length === currentLevel().questions.length &&
      state.answers.every(function (a) { return a.right; });
  }

  function toggleGate(cell, gate) {
    if (state.mode !== "play" || cell >= state.gates.length) return;
    state.gates[cell][gate] = 1 - state.gates[cell][gate];
    state.selected = cell;
    renderCells();
  }

  function selectCell(cell) {
    if (state.mode !== "play" || cell >= state.gates.length) return;
    state.selected = cell;
    renderCells();
  }

  function nextLevel() {
    if (state.mode === "results" && passed() && state.level + 1 < DATA.levels.length) {
      startLevel(state.level + 1);
      window.scrollTo(0, 0);
    }
  }

  function restartGame() {
    state.best = DATA.levels.map(function () { return null; });
    startLevel(0);
    window.scrollTo(0, 0);
  }

  // -- small DOM helpers -------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else if (name === "className") node.className = attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function replace(id, nodes) {
    var node = document.getElementById(id);
    while (node.firstChild) node.removeChild(node.firstChild);
    nodes.forEach(function (child) { node.appendChild(child); });
  }

  function signed(x, digits) {
    var text = x.toFixed(digits);
    return x > 0 ? "+" + text : (Number(text) === 0 ? (0).toFixed(digits) : text);
  }

  function wordLabel(word) { return word === DATA.story ? "\u00b6" : word; }

  function describeWord(word, facts) {
    var info = DATA.words[word];
    if (info.kind === "story") return "a new story begins: a good moment to forget";
    if (info.kind === "question") return "a question";
    var written = facts.filter(function (f) { return candidate(word, f) !== 0; });
    if (!written.length) return "writes nothing into your cells";
    return (info.kind === "fact" ? "fact: " : "noise: ") + written.map(function (f) {
      return "writes " + signed(candidate(word, f), 2) + " into the " + f + " cell";
    }).join(", ");
  }

  // -- the play area -----------------------------------------------------------------------

  function render() {
    var level = currentLevel();
    document.getElementById("level-number").textContent = String(state.level + 1);
    document.getElementById("level-count").textContent = String(DATA.levels.length);
    document.getElementById("level-name").textContent = level.name;
    document.getElementById("level-score").textContent = String(levelScore());
    document.getElementById("total-score").textContent = String(totalScore());
    document.getElementById("level-intro").textContent = level.intro +
      " Lag " + level.lag[0] + " to " + level.lag[1] + " words; " + level.questions.length + " questions.";
    document.getElementById("step").disabled = state.mode !== "play";
    document.getElementById("step-counter").textContent = state.mode === "play"
      ? "word " + (state.t + 1) + " of " + level.words.length
      : "level over";
    renderBelt();
    renderCurrent();
    renderCells();
    renderLog();
  }

  function renderBelt() {
    var level = currentLevel();
    var last = Math.min(state.t, level.words.length - 1);
    var first = Math.max(0, last - BELT_WORDS + 1);
    var items = [];
    for (var s = first; s <= last; s++) {
      var kind = DATA.words[level.words[s]].kind;
      var classes = [kind];
      if (s === state.t && state.mode === "play") classes.push("current");
      items.push(el("li", { className: classes.join(" "), "data-step": String(s), text: wordLabel(level.words[s]) }));
    }
    replace("belt", items);
    var left = level.words.length - state.t - (state.mode === "play" ? 1 : 0);
    document.getElementById("remaining").textContent = left > 0 ? "+" + left + " to come" : "end";
  }

  function renderCurrent() {
    var level = currentLevel();
    if (state.mode !== "play") {
      replace("current", [el("span", { className: "kind", text: "The level is over: see the results below." })]);
      return;
    }
    var word = level.words[state.t];
    var nodes = [el("span", { className: "word", id: "current-word", text: wordLabel(word) })];
    var asked = level.asked[state.t];
    if (asked) {
      nodes.push(el("span", { className: "prompt", text: FACTS[asked].prompt + " (" + FACTS[asked].answers.join(" / ") + ")" }));
      nodes.push(el("span", { className: "kind", text: "open the " + asked + " cell's output gate to answer" }));
    } else {
      nodes.push(el("span", { className: "kind", text: describeWord(word, level.facts) }));
    }
    replace("current", nodes);
  }

  function renderCells() {
    var level = currentLevel();
    var word = state.mode === "play" ? level.words[state.t] : null;
    var cards = level.facts.map(function (fact, k) {
      var g = state.gates[k];
      var c = state.cells[k];
      var classes = ["cell"];
      if (k === state.selected) classes.push("selected");
      if (word !== null && level.asked[state.t] === fact) classes.push("asked");
      var meter = el("div", { className: "meter" }, [el("i"), el("span")]);
      var width = Math.min(Math.abs(c) / 4, 1) * 50;
      meter.lastChild.setAttribute("style", "width:" + width + "%;left:" + (c >= 0 ? 50 : 50 - width) + "%");
      var gates = el("div", { className: "gates" }, GATES.map(function (name, j) {
        return el("button", {
          type: "button",
          className: "gate",
          "data-cell": String(k),
          "data-gate": name,
          "aria-pressed": g[j] === 1 ? "true" : "false",
          title: "toggle the " + name + " gate (key " + name[0].toUpperCase() + ")",
          text: name + " " + (g[j] === 1 ? "open" : "closed"),
        });
      }));
      var children = [
        el("h3", {}, [el("kbd", { text: String(k + 1) }), fact + " cell"]),
        el("div", { className: "value" }, ["C = ", el("span", { className: "cell-value", text: signed(c, 2) })]),
        meter,
      ];
      if (word !== null) {
        var cand = candidate(word, fact);
        var next = g[0] * c + g[1] * cand;
        children.push(el("div", { className: "candidate" }, [
          "this word writes C\u0303 = ", el("b", { className: "candidate-value", text: signed(cand, 2) }),
        ]));
        children.push(gates);
        children.push(el("div", { className: "preview", text:
          "C \u2192 " + g[0] + "\u00b7(" + signed(c, 2) + ") + " + g[1] + "\u00b7(" + signed(cand, 2) + ") = " + signed(next, 2) +
          "; h = " + g[2] + "\u00b7tanh(C) = " + signed(g[2] * Math.tanh(next), 2) }));
      } else {
        children.push(gates);
      }
      return el("div", { className: classes.join(" "), "data-cell": String(k) }, children);
    });
    replace("cells", cards);
  }

  function answerText(answer) { return answer === null ? "no answer (h = 0)" : answer; }

  function renderLog() {
    var items = state.answers.map(function (a) {
      var fact = FACTS[a.question.fact];
      return el("li", { className: a.right ? "right" : "wrong", "data-step": String(a.question.step) }, [
        fact.prompt + " h = " + signed(a.h, 2) + " \u2192 " + answerText(a.answer) + " " +
        (a.right ? "\u2713 right (+" + DATA.scoring.right + ")" : "\u2717 wrong, it was " + fact.answers[a.question.answer]),
      ]);
    });
    if (state.leaks) items.push(el("li", { className: "wrong", text: "leaks so far: " + state.leaks + " (\u2212" + DATA.scoring.leak * state.leaks + ")" }));
    replace("log", items);
  }

  // -- results -----------------------------------------------------------------------------

  function renderResults() {
    var level = currentLevel();
    var model = level.model;
    var n = level.questions.length;
    var youRight = state.answers.filter(function (a) { return a.right; }).length;
    var modelRight = model.right.filter(Boolean).length;
    var ok = passed();
    var last = state.level + 1 === DATA.levels.length;
    var title = document.getElementById("results-title");
    title.className = ok ? "passed" : "failed";
    title.textContent = "Level " + (state.level + 1) + (ok ? " passed" : " not passed: " + (n - youRight) + " of " + n + " answers wrong") +
      (ok && last ? ". You finished the game! Total score " + totalScore() : "");
    document.getElementById("you-right").textContent = youRight + " / " + n;
    document.getElementById("you-leaks").textContent = String(state.leaks);
    document.getElementById("you-score").textContent = String(levelScore());
    document.getElementById("model-right").textContent = modelRight + " / " + n;
    document.getElementById("model-score").textContent = String(DATA.scoring.right * modelRight);
    var next = document.getElementById("next-level");
    next.disabled = !ok || last;
    next.hidden = last;
    document.getElementById("model-verdict").textContent =
      "On this stream the model answered " + modelRight + " of " + n + " questions right. On " +
      model.fresh_streams + " fresh streams of this level it answered " +
      (100 * model.fresh_accuracy).toFixed(1) + "% of the questions right." +
      " Its output gates are never exactly 0 or 1, so leaks are not counted for it.";
    replace("answers-compared", [answersTable(level)]);
    replace("charts", level.facts.map(function (fact, k) { return chart(level, fact, k); }));
    replace("numbers-body", level.facts.map(function (fact, k) { return numbersTable(level, fact, k); }));
  }

  function answersTable(level) {
    var rows = level.questions.map(function (q, j) {
      var fact = FACTS[q.fact];
      var you = state.answers[j];
      var modelAnswer = fact.answers[level.model.answers[j]];
      var modelRight = level.model.right[j];
      return el("tr", { "data-step": String(q.step) }, [
        el("td", { text: String(q.step + 1) }),
        el("td", { text: fact.prompt }),
        el("td", { text: fact.answers[q.answer] }),
        el("td", { className: you.right ? "right" : "wrong", text: answerText(you.answer) + (you.right ? " \u2713" : " \u2717") }),
        el("td", { className: modelRight ? "right" : "wrong", "data-who": "model-answer",
          text: modelAnswer + " (p = " + level.model.confidence[j].toFixed(3) + ")" + (modelRight ? " \u2713" : " \u2717") }),
      ]);
    });
    var head = el("tr", {}, ["word", "question", "right answer", "you", "model"].map(function (h) { return el("th", { text: h }); }));
    return el("table", { className: "answers" }, [el("thead", {}, [head]), el("tbody", {}, rows)]);
  }

  function unitLine(fact) {
    var u = DATA.model.units[fact];
    return "model: unit " + u.unit + " of " + DATA.model.hidden + ", r = " + signed(u.r, 3) +
      " between its cell state and the " + fact + " at the " + fact + " questions" +
      (u.r < 0 ? " (negative: it stores the fact with the opposite sign)" : "");
  }

  var SVG = "http://www.w3.org/2000/svg";
  /** An SVG element; ``tooltip`` becomes its <title>, which browsers show on hover. */
  function svg(tag, attrs, tooltip) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (tooltip !== undefined) {
      var title = document.createElementNS(SVG, "title");
      title.textContent = tooltip;
      node.appendChild(title);
    }
    return node;
  }
  svg.text = function (attrs, text) {
    var node = svg("text", attrs);
    node.textContent = text;
    return node;
  };

  /** Gates as paired bars (you | model) per word, then both cell states as lines. */
  function chart(level, fact, k) {
    var trace = level.trace[fact];
    var T = level.words.length;
    var left = 64;
    var cw = Math.max(16, Math.min(46, 1230 / T));
    var width = left + T * cw + 10;
    var rowH = 26;
    var gateTop = 6;
    var cTop = gateTop + 3 * (rowH + 6) + 8;
    var cH = 150;
    var labelTop = cTop + cH + 8;
    var height = labelTop + 64;
    var root = svg("svg", { viewBox: "0 0 " + width + " " + height, width: width, height: height, role: "img",
      "aria-label": fact + " cell: your gates and cell state beside the model's" });
    function x(t) { return left + t * cw; }

    level.questions.forEach(function (q) {
      if (q.fact === fact) root.appendChild(svg("line", { class: "ask", x1: x(q.step) + cw / 2, x2: x(q.step) + cw / 2, y1: 0, y2: labelTop }));
    });
    GATES.forEach(function (gate, j) {
      var y0 = gateTop + j * (rowH + 6);
      root.appendChild(svg.text({ x: 4, y: y0 + rowH - 8 }, gate));
      var model = trace[gate];
      for (var t = 0; t < T; t++) {
        var you = state.history[t].gates[k][j];
        var w = (cw - 4) / 2;
        root.appendChild(svg("rect", { class: "gate-box", x: x(t) + 1, y: y0, width: cw - 2, height: rowH }));
        root.appendChild(svg("rect", { class: "you", x: x(t) + 2, y: y0 + rowH * (1 - you), width: w, height: rowH * you },
          "word " + (t + 1) + " " + wordLabel(level.words[t]) + ": your " + gate + " gate " + you));
        root.appendChild(svg("rect", { class: "model", x: x(t) + 2 + w, y: y0 + rowH * (1 - model[t]), width: w, height: rowH * model[t] },
          "word " + (t + 1) + " " + wordLabel(level.words[t]) + ": model's " + gate + " gate " + model[t].toFixed(3)));
      }
    });

    var yours = state.history.map(function (h) { return h.cells[k]; });
    var models = trace.cell;
    var scale = Math.max(1, Math.max.apply(null, yours.concat(models).map(Math.abs)));
    function y(c) { return cTop + cH / 2 - (c / scale) * (cH / 2 - 6); }
    root.appendChild(svg.text({ x: 4, y: cTop + cH / 2 + 4 }, "C"));
    root.appendChild(svg.text({ x: 4, y: cTop + 10 }, signed(scale, 1)));
    root.appendChild(svg.text({ x: 4, y: cTop + cH - 2 }, signed(-scale, 1)));
    root.appendChild(svg("line", { class: "axis", x1: left, x2: width - 10, y1: cTop, y2: cTop }));
    root.appendChild(svg("line", { class: "axis", x1: left, x2: width - 10, y1: cTop + cH, y2: cTop + cH }));
    root.appendChild(svg("line", { class: "zero", x1: left, x2: width - 10, y1: y(0), y2: y(0) }));
    [["you", yours], ["model", models]].forEach(function (pair) {
      var points = pair[1].map(function (c, t) { return (x(t) + cw / 2).toFixed(1) + "," + y(c).toFixed(1); });
      root.appendChild(svg("polyline", { class: pair[0] + " line", points: points.join(" ") }));
      pair[1].forEach(function (c, t) {
        root.appendChild(svg("circle", { class: pair[0], cx: x(t) + cw / 2, cy: y(c), r: 2.5 },
          "word " + (t + 1) + " " + wordLabel(level.words[t]) + ": " + (pair[0] === "you" ? "your C " + signed(c, 2) : "model's C " + signed(c, 3))));
      });
    });
    level.words.forEach(function (word, t) {
      var cx = x(t) + cw / 2;
      root.appendChild(svg.text({ x: cx, y: labelTop + 6, transform: "rotate(-50 " + cx + " " + (labelTop + 6) + ")", "text-anchor": "end" }, wordLabel(word)));
    });

    var legend = el("div", { className: "legend" }, [
      el("span", { className: "swatch you" }), "you",
      el("span", { className: "swatch model" }), unitLine(fact),
    ]);
    return el("div", { className: "chart", "data-fact": fact }, [el("h3", { text: fact + " cell" }), legend, root]);
  }

  /** Every value of the chart as text: the player's and the model's, step by step. */
  function numbersTable(level, fact, k) {
    var trace = level.trace[fact];
    var youCols = ["forget", "input", "output", "candidate", "cell", "hidden"];
    var head = el("tr", {}, [el("th", { text: "#" }), el("th", { text: "word" })]
      .concat(youCols.map(function (q) { return el("th", { className: "you-col", text: "you " + q }); }))
      .concat(youCols.map(function (q) { return el("th", { className: "model-col", text: "model " + q }); })));
    var rows = level.words.map(function (word, t) {
      var h = state.history[t];
      var mine = { forget: h.gates[k][0], input: h.gates[k][1], output: h.gates[k][2],
        candidate: candidate(word, fact), cell: h.cells[k], hidden: h.hidden[k] };
      var cells = [el("td", { text: String(t + 1) }), el("td", { className: "word", text: wordLabel(word) })];
      youCols.forEach(function (q) {
        var v = mine[q];
        cells.push(el("td", { className: "you-col", "data-who": "you", "data-fact": fact, "data-q": q, "data-step": String(t),
          text: q === "forget" || q === "input" || q === "output" ? String(v) : v.toFixed(2) }));
      });
      youCols.forEach(function (q) {
        cells.push(el("td", { className: "model-col", "data-who": "model", "data-fact": fact, "data-q": q, "data-step": String(t),
          text: trace[q][t].toFixed(3) }));
      });
      return el("tr", { className: level.asked[t] === fact ? "asked" : "" }, cells);
    });
    return el("div", {}, [el("h3", { text: fact + " cell (" + unitLine(fact) + ")" }),
      el("table", { className: "numbers-table", "data-fact": fact }, [el("thead", {}, [head]), el("tbody", {}, rows)])]);
  }

  // -- texts from the data -----------------------------------------------------------------

  function renderTexts() {
    var s = DATA.scoring;
    document.getElementById("scoring-rule").textContent =
      "Scoring: +" + s.right + " for each right answer; \u2212" + s.leak + " for each word at which a cell's " +
      "output gate is open although its fact is not asked (a leak). Answer every question right to pass " +
      "the level and unlock the next. Your total is the sum of your best score on each level.";
    var m = DATA.model;
    document.getElementById("model-about").textContent =
      "After each level you see what a trained lstmkit LSTM did on the same words: " + m.hidden +
      " units, forget bias " + m.forget_bias + ", " + m.steps + " Adam steps of " + m.batch_size +
      " fresh streams (final loss " + m.final_loss.toFixed(4) + "). It reads one-hot words and never sees the " +
      "candidate values you are given. For each fact we show the unit whose cell state, at that fact's " +
      "questions in " + m.unit_streams + " fresh streams, correlates best with the fact (largest |r| with " +
      "+1/\u22121 or the count); no unit stands for two facts.";
  }

  // -- input -------------------------------------------------------------------------------

  document.getElementById("cells").addEventListener("click", function (event) {
    var gate = event.target.closest("button.gate");
    if (gate) {
      toggleGate(Number(gate.getAttribute("data-cell")), GATES.indexOf(gate.getAttribute("data-gate")));
      return;
    }
    var card = event.target.closest(".cell");
    if (card) selectCell(Number(card.getAttribute("data-cell")));
  });
  document.getElementById("step").addEventListener("click", step);
  document.getElementById("restart-level").addEventListener("click", function () { startLevel(state.level); });
  document.getElementById("retry-level").addEventListener("click", function () { startLevel(state.level); window.scrollTo(0, 0); });
  document.getElementById("next-level").addEventListener("click", nextLevel);
  document.getElementById("restart-game").addEventListener("click", restartGame);

  // A mouse click leaves no focus on the button, so Space and Enter keep stepping the
  // stream instead of pressing the last clicked button again (event.detail is 0 for a
  // click made with the keyboard, which keeps its focus).
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (button && event.detail > 0) button.blur();
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key;
    var focus = event.target;
    var onControl = focus && focus.closest && focus.closest("button, summary, a, input");
    if ((key === " " || key === "Enter") && onControl) return; // the focused control's own action
    var lower = key.length === 1 ? key.toLowerCase() : key;
    var handled = true;
    if (key === " " || key === "Enter") step();
    else if (lower === "r") startLevel(state.level);
    else if (lower === "n") nextLevel();
    else if (Object.prototype.hasOwnProperty.call(GATE_KEYS, lower)) toggleGate(state.selected, GATE_KEYS[lower]);
    else if (key >= "1" && key <= "9" && key.length === 1) selectCell(Number(key) - 1);
    else handled = false;
    if (handled) event.preventDefault();
  });

  renderTexts();
  startLevel(0);
})();
