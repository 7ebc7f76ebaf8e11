import { redactUrl } from '../redact.js';
import { MqError } from './mq-error.js';

const name = 'NoSuchDriverError';
const marker = `mq-drivers.error.${name}`;
const symbol = Symbol.for(marker);

/** No driver handles a URL scheme. Lists what is available and how to install what is missing. */
export class NoSuchDriverError extends MqError {
  private readonly [symbol] = true;
  readonly scheme: string;
  /** The URL asked for, its password replaced by `***`; undefined when not given. */
  readonly url: string | undefined;
  readonly availableDrivers: readonly string[];
  readonly installCommand: string | undefined;
  /** The folders whose node_modules (and their parents') were searched for driver packages. */
  readonly searched: readonly string[];

  constructor({
    scheme,
    url,
    availableDrivers,
    installCommand,
    searched = [],
    cause,
  }: {
    scheme: string;
    url?: string;
    availableDrivers: readonly string[];
    installCommand?: string;
    searched?: readonly string[];
    cause?: unknown;
  }) {
    const available = availableDrivers.length > 0 ? availableDrivers.join(', ') : 'none';
    const hint = installCommand ? ` Install one with: ${installCommand}` : '';
    const safeUrl = url === undefined ? undefined : redactUrl(url);
    const where = safeUrl === undefined ? '' : ` in ${JSON.stringify(safeUrl)}`;
    const looked = searched.length > 0 ? `; looked in node_modules from ${searched.join(', ')}` : '';
    super({
      driver: 'core',
      message: `no driver for URL scheme '${scheme}:'${where} (available: ${available}${looked}).${hint}`,
      cause,
    });
    this.name = name;
    this.scheme = scheme;
    this.url = safeUrl;
    this.availableDrivers = availableDrivers;
    this.installCommand = installCommand;
    this.searched = searched;
  }

  static override isInstance(error: unknown): error is NoSuchDriverError {
    return MqError.hasMarker(error, marker);
  }
}
