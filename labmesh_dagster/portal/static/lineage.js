// The lineage page: draws /api/lineage/<experiment> with Cytoscape.js, left to right by dagre,
// fetches a dataset's files when it is selected, and keeps a plain list of the same nodes and
// edges for screen readers (a canvas is invisible to them). Text goes in through textContent only.
(function () {
  "use strict";
  var container = document.getElementById("lineage-graph");
  var status = document.getElementById("lineage-status");
  var nodeList = document.getElementById("lineage-nodes");
  var edgeList = document.getElementById("lineage-edges");
  var experiment = container.dataset.experiment;
  var api = "/api/lineage/" + encodeURIComponent(experiment);
  var expanded = new Set();
  var focusIndex = -1;

  var cy = cytoscape({
    container: container,
    wheelSensitivity: 0.3,
    style: [
      { selector: "node", style: { label: "data(label)", "font-size": 11, "text-wrap": "wrap",
        "text-max-width": 140, "text-valign": "center", "text-halign": "center", width: 150, height: 40,
        shape: "round-rectangle", "background-color": "#eef0fb", "border-width": 1, "border-color": "#3a3fd4" } },
      { selector: "node[kind = 'run']", style: { shape: "ellipse", "background-color": "#fff6e0",
        "border-color": "#a86b00", width: 130 } },
      { selector: "node[state = 'FAIL']", style: { "border-color": "#a3201a", "border-width": 2 } },
      { selector: "node[kind = 'file']", style: { "background-color": "#ffffff", height: 28, "font-size": 10 } },
      { selector: "node[?restricted]", style: { "background-color": "#e6e8ef", "border-style": "dashed",
        "border-color": "#4a5163", color: "#4a5163" } },
      { selector: "node[?expandable]", style: { "border-width": 2 } },
      { selector: "node:selected", style: { "border-width": 3, "border-color": "#1d2330" } },
      { selector: "edge", style: { width: 1.5, "curve-style": "bezier", "target-arrow-shape": "triangle",
        "line-color": "#8a90a3", "target-arrow-color": "#8a90a3" } },
      { selector: "edge[kind = 'file']", style: { "line-color": "#3a3fd4", "target-arrow-color": "#3a3fd4" } },
      { selector: "edge[kind = 'member']", style: { "line-style": "dashed", "target-arrow-shape": "none" } }
    ]
  });
  window.cy = cy;

  function add(answer) {
    var fresh = [];
    answer.nodes.forEach(function (node) {
      var shown = cy.getElementById(node.id);
      if (shown.empty()) {
        fresh.push({ group: "nodes", data: node });
      } else {
        shown.data(node);
      }
    });
    cy.add(fresh);
    var links = [];
    answer.edges.forEach(function (edge) {
      if (cy.getElementById(edge.id).empty()) links.push({ group: "edges", data: edge });
    });
    answer.nodes.forEach(function (node) {
      // A file hangs off its dataset by a dashed edge rather than inside it: dagre cannot lay out edges
      // that end on a compound node, and runs connect to datasets.
      var id = node.dataset + ">" + node.id;
      if (node.dataset && cy.getElementById(id).empty() && !cy.getElementById(node.dataset).empty()) {
        links.push({ group: "edges", data: { id: id, source: node.dataset, target: node.id, kind: "member" } });
      }
    });
    cy.add(links);
    answer.expanded.forEach(function (id) {
      expanded.add(id);
      cy.getElementById(id).data("expandable", false);
    });
    cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 20, rankSep: 60, fit: true, padding: 20 }).run();
    list();
  }

  function describe(node) {
    var data = node.data();
    if (data.restricted) return "restricted";
    var text = data.kind + " " + data.label;
    if (data.kind === "file" && data.zone) text = "file in " + data.zone + ": " + data.label;
    if (data.kind === "dataset" && data.file_count !== null) text += " (" + data.file_count + " files)";
    return text;
  }

  function list() {
    nodeList.replaceChildren();
    cy.nodes().forEach(function (node) {
      var item = document.createElement("li");
      var data = node.data();
      if (data.restricted) item.className = "restricted";
      if (data.href) {
        var link = document.createElement("a");
        link.href = data.href;
        link.textContent = describe(node);
        item.appendChild(link);
      } else {
        item.textContent = describe(node);
      }
      if (data.expandable && !expanded.has(data.id)) {
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = "Show files of " + data.label;
        button.addEventListener("click", function () { expand(data.id); });
        item.appendChild(button);
      }
      nodeList.appendChild(item);
    });
    edgeList.replaceChildren();
    cy.edges().forEach(function (edge) {
      var item = document.createElement("li");
      var how = { flow: "feeds", file: "was derived into", member: "holds" }[edge.data("kind")] || "leads to";
      item.textContent = describe(edge.source()) + " " + how + " " + describe(edge.target());
      edgeList.appendChild(item);
    });
  }

  function load(expand) {
    container.dataset.state = "loading";
    var query = expand ? "?" + new URLSearchParams({ expand: expand }).toString() : "";
    return fetch(api + query, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("the server answered " + response.status);
        return response.json();
      })
      .then(function (answer) {
        add(answer);
        status.textContent = cy.nodes().length + " nodes, " + cy.edges().length + " edges.";
        container.dataset.state = "ready";
      })
      .catch(function (error) {
        status.textContent = "The lineage could not be loaded: " + error.message;
        container.dataset.state = "error";
      });
  }

  function expand(id) {
    if (expanded.has(id)) return Promise.resolve();
    return load(id);
  }

  cy.on("tap", "node", function (event) {
    var data = event.target.data();
    if (data.expandable) expand(data.id);
    else if (data.href) window.location.href = data.href;
  });

  // Keyboard: arrow keys move the selection through the nodes in list order; Enter opens the selected one.
  container.addEventListener("keydown", function (event) {
    var nodes = cy.nodes();
    if (!nodes.length) return;
    if (event.key === "ArrowRight" || event.key === "ArrowDown" || event.key === "ArrowLeft" || event.key === "ArrowUp") {
      var step = event.key === "ArrowRight" || event.key === "ArrowDown" ? 1 : -1;
      focusIndex = (focusIndex + step + nodes.length) % nodes.length;
      cy.nodes().unselect();
      var node = nodes[focusIndex];
      node.select();
      status.textContent = describe(node) + (node.data("expandable") ? ". Press Enter to show its files." : "");
      event.preventDefault();
    } else if (event.key === "Enter" && focusIndex >= 0) {
      var chosen = nodes[focusIndex].data();
      if (chosen.expandable) expand(chosen.id);
      else if (chosen.href) window.location.href = chosen.href;
      event.preventDefault();
    }
  });

  window.labmeshLineage = { cy: cy, expand: expand };
  load(null);
})();
