// The trading hall's live feed: the book and new trades arrive as server-sent events.
(function () {
  "use strict";

  function yuan(fen) { return (fen / 100).toFixed(2); }
  function tonnes(t) { return t.toLocaleString("en-US"); }

  function cell(text) {
    var td = document.createElement("td");
    td.className = "num";
    td.textContent = text;
    return td;
  }

  function start() {
    var hall = document.getElementById("depth");
    if (!hall || !window.EventSource) { return; }
    var market = hall.dataset.market, instrument = hall.dataset.instrument;
    var url = "/api/v1/market-data/" + encodeURIComponent(market) + "/" +
      encodeURIComponent(instrument) + "/stream?after=" + (hall.dataset.lastTrade || "0");
    var feed = new EventSource(url);
    feed.addEventListener("book", function (event) {
      var book = JSON.parse(event.data);
      var body = hall.querySelector("tbody");
      var rows = [];
      book.asks.slice().reverse().forEach(function (level) { rows.push(["ask", level]); });
      book.bids.forEach(function (level) { rows.push(["bid", level]); });
      body.textContent = "";
      rows.forEach(function (row) {
        var tr = document.createElement("tr");
        tr.className = row[0];
        tr.appendChild(cell(yuan(row[1][0])));
        tr.appendChild(cell(tonnes(row[1][1])));
        body.appendChild(tr);
      });
      hall.dataset.live = "true";
    });
    feed.addEventListener("trade", function (event) {
      var trade = JSON.parse(event.data);
      var list = document.querySelector("#trades tbody");
      if (!list) { return; }
      var tr = document.createElement("tr");
      tr.className = "live-trade";
      [String(trade.id), yuan(trade.price_fen), tonnes(trade.quantity), "", "", ""].forEach(
        function (text) { tr.appendChild(cell(text)); });
      list.insertBefore(tr, list.firstChild);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
