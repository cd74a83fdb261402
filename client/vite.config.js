import { defineConfig } from 'vite';

// `npm run dev` serves the client with hot reload and forwards the API and the poke
// socket to a local server (default http://127.0.0.1:8080, or DEV_API_TARGET).
const target = process.env.DEV_API_TARGET || 'http://127.0.0.1:8080';

export default defineConfig({
  server: {
    host: '127.0.0.1',
    proxy: {
      '/api': { target, changeOrigin: true, ws: true },
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
  },
});
