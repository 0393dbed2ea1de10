// Photos from a phone or a laptop into the inbox: each file is sent on its own (a bar per file),
// to the folder chosen, and the daemon takes it as it takes a dropped file; the live page then
// shows it queued and painting.
(function () {
  "use strict";
  const form = document.getElementById("upload");
  if (!form) return;
  const list = form.querySelector("ul.uploads");
  const input = form.querySelector("input[type=file]");
  const drop = form.querySelector(".drop");
  let queue = Promise.resolve();

  function send(file) {
    const item = document.createElement("li");
    const bar = document.createElement("progress");
    const text = document.createElement("span");
    bar.max = 100; bar.value = 0;
    text.textContent = " " + file.name;
    item.append(bar, text);
    list.appendChild(item);
    return new Promise((done) => {
      const xhr = new XMLHttpRequest();
      const folder = form.elements.folder.value;
      xhr.open("POST", "/upload?folder=" + encodeURIComponent(folder) + "&name=" + encodeURIComponent(file.name));
      xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = 100 * e.loaded / e.total; };
      xhr.onload = () => {
        let message = xhr.statusText;
        try { message = JSON.parse(xhr.responseText).message; } catch (err) { message = xhr.responseText || message; }
        item.className = xhr.status < 300 ? "uploaded" : "bad";
        // The bytes all arrived either way; a full bar beside a refusal would read as success.
        if (xhr.status < 300) bar.value = 100; else bar.remove();
        text.textContent = " " + message;
        done();
      };
      xhr.onerror = () => { item.className = "bad"; bar.remove(); text.textContent = " " + file.name + ": the upload broke off"; done(); };
      xhr.send(file);
    });
  }
  function sendAll(files) {
    for (const file of files) queue = queue.then(() => send(file));
    input.value = "";
  }
  input.addEventListener("change", () => sendAll([...input.files]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    sendAll([...e.dataTransfer.files]);
  });
})();
