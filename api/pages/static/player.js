// Recording player: the <audio> element streams with HTTP Range (so it can seek); a canvas draws the
// waveform from the peaks computed at ingest (no audio decoding in the browser); comment markers are
// buttons laid over the canvas, and a click on either the canvas or a marker seeks.
"use strict";
(function () {
  const COLORS = { played: "#1463d8", rest: "#b8c4d2", cursor: "#c62828", axis: "#eef1f5" };
  const MARKER_HIT_PX = 6;

  function formatTime(seconds) {
    if (!Number.isFinite(seconds) || seconds < 0) return "–";
    const minutes = Math.floor(seconds / 60);
    const rest = seconds - minutes * 60;
    return minutes + ":" + (rest < 10 ? "0" : "") + rest.toFixed(1);
  }

  class WaveformPlayer {
    constructor({ audio, canvas, markers, peaks, duration, onTime, markerLabel }) {
      this.audio = audio;
      this.canvas = canvas;
      this.markersEl = markers;
      this.peaks = peaks || [];
      this.knownDuration = duration || 0;
      this.onTime = onTime || (() => {});
      this.markerLabel = markerLabel || ((m) => formatTime(m.at_s) + " " + m.text);
      this.markers = [];
      this.animating = false;
      canvas.addEventListener("click", (ev) => this.seekToPixel(ev.offsetX));
      for (const name of ["timeupdate", "seeked", "loadedmetadata", "durationchange"]) {
        audio.addEventListener(name, () => this.refresh());
      }
      audio.addEventListener("play", () => this.animate());
      window.addEventListener("resize", () => this.draw());
      this.refresh();
    }

    get duration() {
      // The file's own length once the browser has read it; until then the length stored at ingest.
      const d = this.audio.duration;
      return Number.isFinite(d) && d > 0 ? d : this.knownDuration;
    }

    get currentTime() {
      return this.audio.currentTime || 0;
    }

    seek(seconds) {
      const d = this.duration;
      const target = Math.max(0, d ? Math.min(seconds, d) : seconds);
      this.audio.currentTime = target;
      this.refresh();
      return target;
    }

    seekToPixel(x) {
      const width = this.canvas.clientWidth;
      if (!width || !this.duration) return;
      const near = this.markers.find((m) => Math.abs(this.xOf(m.at_s) - x) <= MARKER_HIT_PX);
      this.seek(near ? near.at_s : (x / width) * this.duration);
    }

    xOf(seconds) {
      return this.duration ? (seconds / this.duration) * this.canvas.clientWidth : 0;
    }

    setMarkers(markers) {
      this.markers = markers.slice().sort((a, b) => a.at_s - b.at_s);
      this.markersEl.replaceChildren();
      for (const [index, marker] of this.markers.entries()) {
        const pct = this.duration ? Math.min(100, (marker.at_s / this.duration) * 100) : 0;
        const button = document.createElement("button");
        button.type = "button";
        button.className = "qa-marker" + (marker.draft ? " draft" : "");
        button.style.left = pct + "%";
        button.dataset.at = String(marker.at_s);
        button.dataset.index = String(index);
        button.title = this.markerLabel(marker);
        button.setAttribute("aria-label", this.markerLabel(marker));
        button.addEventListener("click", (ev) => {
          ev.stopPropagation();
          this.seek(marker.at_s);
        });
        this.markersEl.append(button);
      }
      this.draw();
    }

    refresh() {
      // Markers are placed in percent of the duration, which may only now be known.
      if (this.markers.length && this.markersEl.childElementCount) {
        for (const button of this.markersEl.children) {
          const at = Number(button.dataset.at);
          button.style.left = (this.duration ? Math.min(100, (at / this.duration) * 100) : 0) + "%";
        }
      }
      this.draw();
      this.onTime(this.currentTime, this.duration);
    }

    animate() {
      if (this.animating) return;
      this.animating = true;
      const step = () => {
        this.refresh();
        if (this.audio.paused || this.audio.ended) {
          this.animating = false;
          return;
        }
        window.requestAnimationFrame(step);
      };
      window.requestAnimationFrame(step);
    }

    draw() {
      const canvas = this.canvas;
      const ratio = window.devicePixelRatio || 1;
      const cssWidth = canvas.clientWidth;
      const cssHeight = canvas.clientHeight || 96;
      if (!cssWidth) return;
      if (canvas.width !== Math.round(cssWidth * ratio)) canvas.width = Math.round(cssWidth * ratio);
      if (canvas.height !== Math.round(cssHeight * ratio)) canvas.height = Math.round(cssHeight * ratio);
      const ctx = canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, cssWidth, cssHeight);
      const middle = cssHeight / 2;
      ctx.fillStyle = COLORS.axis;
      ctx.fillRect(0, middle - 0.5, cssWidth, 1);
      const peaks = this.peaks;
      const playedX = this.xOf(this.currentTime);
      if (peaks.length) {
        const slot = cssWidth / peaks.length;
        const bar = Math.max(1, slot * 0.7);
        for (let i = 0; i < peaks.length; i++) {
          const x = i * slot;
          const half = Math.max(0.5, Math.min(1, peaks[i]) * (middle - 2));
          ctx.fillStyle = x + bar <= playedX ? COLORS.played : COLORS.rest;
          ctx.fillRect(x, middle - half, bar, half * 2);
        }
      }
      if (this.duration) {
        ctx.fillStyle = COLORS.cursor;
        ctx.fillRect(Math.min(playedX, cssWidth - 1), 0, 1.5, cssHeight);
      }
    }
  }

  window.ccPlayer = { WaveformPlayer, formatTime };
})();
