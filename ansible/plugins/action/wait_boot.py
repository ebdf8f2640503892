# livegraft.fleet.wait_boot -- wait, from the controller, until a host answers from a boot other than the
# one it left (the kexec path of the rollout role, docs/fleet.md).
#
# An action plugin, so it runs on the controller: Ansible's own ways to wait for a rebooting host
# (wait_for_connection, async/async_status, the reboot action's distribution probe) run Python modules
# on the target, and Livegraft hosts have no Python; an `until:` loop over `raw` does not help either,
# because an unreachable result ends the host's play instead of being retried. This sends the target
# only a shell command over the host's own connection (what `raw` does), and retries on the controller.
#
# Options:
#   boot_id          the boot id the host had before the reboot (/proc/sys/kernel/random/boot_id); required
#   command          shell command whose first output line is the current boot id
#                    (default: cat /proc/sys/kernel/random/boot_id). If it exits non-zero while the host
#                    answers, the wait ends at once, failed, with its output: the rollout's command does that
#                    when the reboot command has failed on the host and it is not going down.
#   timeout          seconds to wait in all (default 300)
#   interval         seconds between attempts (default 2)
#   connect_timeout  connection timeout of each attempt, seconds (default 5)
# Returns boot_id (the new one), elapsed (seconds), attempts; on failure also msg, rc, stdout and
# same_boot (true when the last answer came from the boot it was to leave: the host did not go down).
from __future__ import annotations

import time

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

DEFAULT_COMMAND = 'cat /proc/sys/kernel/random/boot_id'


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('boot_id', 'command', 'timeout', 'interval', 'connect_timeout'))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        left = to_text(args.get('boot_id') or '').strip()
        if not left:
            result.update(failed=True, msg='boot_id is required: the boot id the host had before the reboot')
            return result
        command = to_text(args.get('command') or DEFAULT_COMMAND)
        try:
            timeout = float(args.get('timeout', 300))
            interval = float(args.get('interval', 2))
            connect_timeout = int(args.get('connect_timeout', 5))
        except (TypeError, ValueError):
            result.update(failed=True, msg='timeout, interval and connect_timeout must be numbers')
            return result
        if self._play_context.check_mode:
            result.update(skipped=True, msg='check mode: no reboot to wait for')
            return result
        try:
            # Each attempt gives up quickly; the loop, not the connection, decides how long to wait.
            self._connection.set_option('timeout', connect_timeout)
        except (AnsibleError, KeyError, AttributeError):
            pass
        if 'ssh' in getattr(self._connection, 'transport', ''):
            # A session opened just before the host went down never ends by itself (the kexec'd kernel
            # knows nothing of it): have ssh give up on a server that stops answering.
            try:
                extra = self._connection.get_option('ssh_extra_args') or ''
                self._connection.set_option('ssh_extra_args', (extra + ' -o ServerAliveInterval=%d -o ServerAliveCountMax=2' % max(1, connect_timeout // 2)).strip())
            except (AnsibleError, KeyError, AttributeError):
                pass

        start = time.monotonic()
        attempts = 0
        last = 'no answer yet'
        same_boot = False
        while True:
            attempts += 1
            # A persistent connection (ssh ControlPersist) still points at the boot that is going away
            # and may hang on it: drop it, so that every attempt connects afresh.
            try:
                self._connection.reset()
            except (AnsibleError, AttributeError):
                pass
            try:
                r = self._low_level_execute_command(command, sudoable=False)
            except AnsibleConnectionFailure as e:
                lines = to_text(e).strip().splitlines()
                last = 'unreachable: ' + (lines[-1] if lines else 'no connection')
                same_boot = False
            else:
                out = to_text(r.get('stdout', '')).replace('\r', '').strip()
                if r.get('rc', 0) != 0:
                    result.update(failed=True, rc=r.get('rc'), stdout=out, same_boot=True, attempts=attempts, elapsed=round(time.monotonic() - start, 1),
                                  msg='the host answers from the same boot and the reboot command has ended: ' + (out[-600:] or 'no output'))
                    return result
                current = out.splitlines()[0].strip() if out else ''
                if current and current != left:
                    result.update(changed=False, boot_id=current, attempts=attempts, elapsed=round(time.monotonic() - start, 1),
                                  msg='back from boot %s in boot %s' % (left, current))
                    return result
                last = 'still in boot ' + left
                same_boot = True
            elapsed = time.monotonic() - start
            if elapsed + interval > timeout:
                result.update(failed=True, same_boot=same_boot, attempts=attempts, elapsed=round(elapsed, 1),
                              msg='the host did not come back in a new boot within %g s (last attempt: %s)' % (timeout, last))
                return result
            time.sleep(interval)
