#!/usr/bin/env node
/** Process entry of the `medsynth` command. */
import { main } from './main.js';

process.exitCode = await main();
