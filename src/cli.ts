// The `secretsync` CLI: iam-policy and doctor arrive with their issues; for now it names them.
const [command] = process.argv.slice(2);
const help = `Usage: secretsync <command>

Commands:
  controller      run the controller (same as the image's entry point)
`;
if (command === 'controller') {
  process.argv.splice(2, 1);
  await import('./controller/main.ts');
} else {
  process.stdout.write(help);
  process.exit(command === undefined || command === '--help' ? 0 : 2);
}
