export { run, createProgram } from './program';
export { EXIT, CliError } from './client';
export type { Io } from './output';
