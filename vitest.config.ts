import { defineConfig } from "vitest/config";

/**
 * Two projects: `unit` (pure TypeScript and LuaJIT-run modules, parallel) and `integration`
 * (one real nginx + Medplum upstream + oidc-provider started by the global setup, files run
 * one at a time so each test's error.log delta is its own).
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts", "test/security/**/*.test.ts"],
          globalSetup: ["test/harness/global-setup.ts"],
          setupFiles: ["test/harness/errorlog-guard.ts"],
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
