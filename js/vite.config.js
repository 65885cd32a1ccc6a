/**
 * Library build of the dashboard: one ES module with every dependency (plotly.js included)
 * and one stylesheet, written to ../bertlab/static/ where the Python package picks them up
 * (anywidget `_esm` / `_css`, and `watch.to_html()`). Nothing is left external: the widget must
 * work offline and without a CDN.
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig, transformWithEsbuild } from "vite";

const here = fileURLToPath(new URL(".", import.meta.url));

/**
 * Vite leaves whitespace in ES-format library builds (to keep pure annotations for the
 * consumer's tree-shaking). Nobody tree-shakes this bundle, it is loaded as is: minify it fully.
 */
const minifyBundle = {
  name: "bertlab-minify-es",
  enforce: "post",
  async generateBundle(_options, bundle) {
    for (const chunk of Object.values(bundle)) {
      if (chunk.type !== "chunk") continue;
      const opts = { minify: true, format: "esm", target: "es2020", charset: "utf8" };
      chunk.code = (await transformWithEsbuild(chunk.code, chunk.fileName, opts)).code;
    }
  },
};

export default defineConfig({
  plugins: [minifyBundle],
  build: {
    outDir: resolve(here, "../bertlab/static"),
    emptyOutDir: false,
    target: "es2020",
    minify: true,
    sourcemap: false,
    copyPublicDir: false,
    reportCompressedSize: false,
    lib: {
      entry: resolve(here, "src/widget.js"),
      formats: ["es"],
      fileName: () => "dashboard.js",
      cssFileName: "dashboard",
    },
    rollupOptions: {
      external: [],
      output: { inlineDynamicImports: true },
    },
    // plotly's bundle is one 1.5 MB file; it is meant to be.
    chunkSizeWarningLimit: 4000,
  },
  test: {
    environment: "node",
    include: ["test/**/*.test.js"],
  },
});
