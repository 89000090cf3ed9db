// The chat: posts the question to /api/ask and shows the NDJSON answer as it streams in.
// Every text goes in through textContent: nothing a file or a question holds becomes markup.
(function () {
  "use strict";
  const form = document.getElementById("ask");
  if (!form) return;
  const question = document.getElementById("question");
  const answer = document.getElementById("answer");
  const sources = document.getElementById("sources");
  const heading = document.getElementById("sources-heading");
  const status = document.getElementById("answer-status");
  const marks = new Map(); // citation number -> the [n] links that name it

  function mark(number) {
    const link = document.createElement("a");
    link.className = "cite";
    link.textContent = "[" + number + "]";
    link.href = "#source-" + number; // until the citation itself arrives
    if (!marks.has(number)) marks.set(number, []);
    marks.get(number).push(link);
    return link;
  }

  function showPart(event) {
    const paragraph = document.createElement("p");
    paragraph.textContent = event.text;
    for (const number of event.citations) paragraph.append(" ", mark(number));
    answer.append(paragraph);
  }

  function showCitation(event) {
    heading.hidden = false;
    const item = document.createElement("li");
    item.id = "source-" + event.number;
    item.value = event.number;
    const link = document.createElement("a");
    link.href = event.href;
    link.textContent = event.title;
    const where = document.createElement("span");
    where.className = "where";
    const place = [event.location, event.experiment_id, event.dataset ? event.dataset + " dataset" : null];
    where.textContent = " — " + place.filter(Boolean).join(", ");
    item.append(link, where);
    if (event.quote) {
      const quote = document.createElement("blockquote");
      quote.textContent = event.quote;
      item.append(quote);
    }
    sources.append(item);
    for (const linkToSource of marks.get(event.number) || []) linkToSource.href = event.href;
  }

  function handle(event) {
    if (event.type === "part") showPart(event);
    else if (event.type === "citation") showCitation(event);
    else if (event.type === "done") {
      status.textContent = event.answered ? "" : "Not answered.";
      if (!event.answered) answer.classList.add("refused");
      for (const note of event.notes) status.textContent += " " + note;
    } else if (event.type === "error") status.textContent = "The answer stopped: " + event.detail;
  }

  form.addEventListener("submit", async function (submitted) {
    submitted.preventDefault();
    answer.replaceChildren();
    answer.classList.remove("refused");
    sources.replaceChildren();
    heading.hidden = true;
    marks.clear();
    status.textContent = "Answering…";
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const response = await fetch("/api/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
        body: JSON.stringify({ question: question.value }),
      });
      if (!response.ok) {
        const problem = await response.json().catch(() => ({}));
        const detail = problem.detail;
        status.textContent = typeof detail === "string" ? detail : "The question could not be asked (" + response.status + ").";
        return;
      }
      status.textContent = "";
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffered = "";
      for (;;) {
        const { value, done } = await reader.read();
        buffered += decoder.decode(value || new Uint8Array(), { stream: !done });
        let newline;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line) handle(JSON.parse(line));
        }
        if (done) break;
      }
    } catch (failure) {
      status.textContent = "The answer could not be read: " + failure;
    } finally {
      button.disabled = false;
    }
  });
})();
