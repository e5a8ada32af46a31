/**
 * The parts of undici the sender uses, loaded from their own modules: undici's index also loads
 * fetch, WebSocket, the caches and the mock agent, about 60 ms of every start-up spent before the
 * first delivery. They are the same modules the index re-exports, so classes and errors are the
 * same objects whichever way they are imported (tests import the index).
 */
import { createRequire } from "node:module";
import type { Agent as UndiciAgent, buildConnector as undiciBuildConnector, errors as undiciErrors } from "undici";

const require = createRequire(import.meta.url);

export const Agent = require("undici/lib/dispatcher/agent.js") as typeof UndiciAgent;
export type Agent = UndiciAgent;
export const errors = require("undici/lib/core/errors.js") as typeof undiciErrors;
export const buildConnector = require("undici/lib/core/connect.js") as typeof undiciBuildConnector;
