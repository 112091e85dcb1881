// The Images page: upload a file into a host's library or a storage domain, with a progress bar.
"use strict";
import { imageName, isIso, sizeText, uploadImage, UploadProgress } from "/static/upload.js";

const form = document.getElementById("upload-form");
const fileInput = document.getElementById("upload-file");
const nameInput = document.getElementById("upload-name");
const submit = document.getElementById("upload-submit");
const progress = new UploadProgress(document.getElementById("upload"));

fileInput.addEventListener("change", () => {
  const file = fileInput.files[0];
  if (file) nameInput.placeholder = imageName(file.name);
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = fileInput.files[0];
  if (!file) return;
  const name = nameInput.value.trim() || imageName(file.name);
  const kind = document.getElementById("upload-kind").value;
  const host = document.getElementById("upload-host").value;
  const domain = document.getElementById("upload-domain").value;
  if (kind === "iso" && !(await isIso(file))) {
    progress.show("refused", `${file.name} is not an ISO image (no ISO 9660 or UDF signature)`);
    return;
  }
  submit.disabled = true;
  progress.show("uploading", `uploading ${name}…`, 0);
  try {
    const answer = await uploadImage(file, {
      name, host, kind, domain,
      onProgress: (sent, total) => progress.show(
        "uploading", `uploading ${name}: ${sizeText(sent)} of ${sizeText(total)}`, sent / total),
    });
    const image = answer.image;
    const where = image.host ? `host ${image.host}` : `storage domain ${image.domain}`;
    progress.show("done", `uploaded ${image.kind} image ${image.name} to ${where}`, 1);
    form.reset();
    nameInput.placeholder = "name (default: the file's)";
    document.body.dispatchEvent(new CustomEvent("corral-uploaded"));
  } catch (error) {
    progress.show("failed", error.message);
  } finally {
    submit.disabled = false;
  }
});
