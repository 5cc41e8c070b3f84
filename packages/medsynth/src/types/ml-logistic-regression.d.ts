/**
 * Types for ml-logistic-regression 2.x (the package ships none): one-vs-rest logistic regression trained by
 * full-batch gradient ascent. Only what medsynth uses is declared.
 */
declare module 'ml-logistic-regression' {
  import type { Matrix } from 'ml-matrix';

  /** One binary classifier of the one-vs-rest set. */
  export interface LogisticRegressionTwoClasses {
    /** Row vector `1 × d` of coefficients. */
    readonly weights: Matrix;
    /** σ(X·wᵀ) per row: the probability of the target 1, which for classifier j of the set is "not class j". */
    testScores(features: Matrix): number[];
  }

  export interface LogisticRegressionOptions {
    /** Gradient steps (default 50 000). */
    numSteps?: number;
    /** Step size on the summed (not mean) gradient (default 5e-4). */
    learningRate?: number;
  }

  export default class LogisticRegression {
    constructor(options?: LogisticRegressionOptions);
    /** Classes found in the training labels (which must be 0..numberClasses−1). */
    numberClasses: number;
    /** Classifier j separates class j (target 0) from the rest (target 1). */
    classifiers: LogisticRegressionTwoClasses[];
    /** `X`: `N × d`; `Y`: `N × 1` column of class indices. */
    train(X: Matrix, Y: Matrix): void;
    predict(X: Matrix): number[];
    toJSON(): Record<string, unknown>;
  }
}
