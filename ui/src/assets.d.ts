// CSS files are imported for their side effect; esbuild bundles them into one stylesheet.
declare module '*.css';
