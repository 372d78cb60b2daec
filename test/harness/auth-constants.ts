/** Settings the test policy and the identity tests share. */
export const TEST_AUDIENCE = "https://fhir-edge.local/fhir";
/** Short enough for the tests to wait out. */
export const TEST_JWKS_REFETCH_S = 3;
export const TEST_SKEW_S = 1;
export const TEST_SHORT_TTL_S = 2;
export const TEST_NEGATIVE_TTL_S = 5;
