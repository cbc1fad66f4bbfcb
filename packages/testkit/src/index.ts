/**
 * Shoal's test kit. Deterministic building blocks for simulations (a fake clock, a seeded random
 * source, a simulated network) and helpers that run the real servers Shoal depends on for one test
 * and always clean up after it (nats-server, labelled Docker containers), plus a throw-away PKI.
 */
export { FakeClock, type FakeClockOptions } from './fake-clock.js';
export { SeededRandom, TEST_SEED_ENV, testSeed, type Seed } from './seeded-random.js';
export {
  RELIABLE_LINK,
  SimNetwork,
  type Envelope,
  type LinkConditions,
  type MessageHandler,
  type NetworkStats,
  type NodeId,
  type SimNetworkOptions,
} from './sim-network.js';
export { failure } from './failure.js';
export { freeLoopbackPort } from './loopback-port.js';
export { startNatsServer, type NatsServer, type NatsServerOptions } from './nats-server.js';
export {
  TEST_IMAGE,
  TEST_LABEL,
  TEST_RUN_ID_ENV,
  TestContainer,
  dockerClient,
  listTestContainers,
  removeTestContainers,
  requireTestImage,
  runTestContainer,
  testRunId,
  type CommandOutput,
  type CommandResult,
  type TestContainerOptions,
} from './containers.js';
export {
  createTestPki,
  type TestCertificate,
  type TestCertificateAuthority,
  type TestCertificateSubject,
  type TestPki,
  type ManagerIdentity,
  writeManagerIdentity,
} from './test-pki.js';
export { ServiceProcess, serviceEnvironment } from './service-process.js';
export { DOCKER_CLIS, runDocker, type CliResult } from './docker-cli.js';
export { DOCKER, SwarmCluster, SwarmHost, type ManagerHost } from './swarm-cluster.js';
