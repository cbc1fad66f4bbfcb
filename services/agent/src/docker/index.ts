/**
 * The Docker executor of the node agent: runs each task as a container on the local dockerd, with its
 * secrets and configs on a tmpfs of its own (see README.md, "Docker executor").
 */
export { createDockerExecutor, type DockerExecutorOptions } from './executor.js';
export { CONTAINER_UNHEALTHY } from './controller.js';
export { DEFAULT_SECRETS_DIR } from './task-files.js';
