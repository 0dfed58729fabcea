// Warren's version, reported to clients in connection.start. Kept equal to package.json's by a test.
export const WARREN_VERSION = '0.1.0';
