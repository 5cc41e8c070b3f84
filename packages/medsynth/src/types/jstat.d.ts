/**
 * Minimal types for jstat 1.9 (a CommonJS module without its own types): only the functions medsynth uses.
 */
declare module 'jstat' {
  interface JStat {
    /** Regularised incomplete beta function I_x(a, b). */
    ibeta(x: number, a: number, b: number): number;
    studentt: {
      /** Quantile (inverse CDF) of Student's t with `dof` degrees of freedom. */
      inv(p: number, dof: number): number;
    };
    /** ln B(a, b). */
    betaln(a: number, b: number): number;
    normal: {
      inv(p: number, mean: number, std: number): number;
      cdf(x: number, mean: number, std: number): number;
      pdf(x: number, mean: number, std: number): number;
    };
    beta: {
      /** Quantile of Beta(a, b). */
      inv(p: number, a: number, b: number): number;
    };
  }
  const jStat: JStat;
  export = jStat;
}
