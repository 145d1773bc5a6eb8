export { createJobRunner, type JobHandler, type JobResult, type JobRunner } from './job-runner.js';
