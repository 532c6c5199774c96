// Prints the configuration table for README.md from src/config/config.ts (kept in one place).
import { CONFIG_DOCS } from '../src/config/config.js';

console.log('| Setting | Default | Meaning |\n| --- | --- | --- |');
for (const [name, def, meaning] of CONFIG_DOCS) console.log(`| \`${name.split(', ').join('`, `')}\` | ${def} | ${meaning} |`);
