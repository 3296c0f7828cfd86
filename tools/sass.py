"""SASS as data: cuobjdump -sass text parsed into each function's instructions, with the control
bits every Volta-and-later instruction carries, and the loops its backward branches close.

Each 128-bit SASS instruction's upper word holds, from bit 41 of that word: the stall count (4
bits: cycles the scheduler waits before issuing this warp's next instruction), the yield bit, the
write scoreboard barrier the instruction sets when its result arrives late (3 bits, 7 = none), the
read barrier (3 bits), and the wait mask (6 bits: barriers that must clear before it issues).
A global load sets a write barrier and the first instruction that needs its result waits on it,
so the loads a warp has in flight are read from the barriers, not guessed from registers (Jia et
al., "Dissecting the NVIDIA Volta GPU Architecture via Microbenchmarking", 2018, section 2.1;
the same layout on Ampere and Hopper). tools/performance_model.py is the user.
"""
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

_ARCH = re.compile(r"code for (sm_\d+)")
_FUNCTION = re.compile(r"Function : (\S+)")
_INSTRUCTION = re.compile(
    r"/\*([0-9a-f]{4,})\*/\s+(@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)\s*([^;]*);\s*/\* (0x[0-9a-f]{16}) \*/")
_UPPER_WORD = re.compile(r"^\s*/\* (0x[0-9a-f]{16}) \*/\s*$")
# A branch's target, after its optional condition operand ("BRA P1, 0xf0": taken when the
# instruction's predicate and P1 hold; "BRA !P2, 0x3b0").
_BRANCH_TARGET = re.compile(r"^(?:!?U?P[0-7T], )?(0x[0-9a-f]+)")
_NO_BARRIER = 7


@dataclass(frozen=True)
class Instruction:
    """One SASS instruction: its address, guard predicate, opcode with modifiers, operands, and
    control bits (stall cycles, the write barrier it sets or None, the barriers it waits on)."""
    address: int
    predicate: str
    opcode: str
    operands: str
    stall: int
    write_barrier: Optional[int]
    wait: Tuple[int, ...]

    @property
    def base(self) -> str:
        """The opcode without modifiers: LDG.E.128.CONSTANT -> LDG."""
        return self.opcode.split(".")[0]


def _control(upper: int) -> Tuple[int, Optional[int], Tuple[int, ...]]:
    bits = upper >> 41
    write = (bits >> 5) & 7
    mask = (bits >> 11) & 0x3F
    return bits & 0xF, None if write == _NO_BARRIER else write, tuple(b for b in range(6) if mask >> b & 1)


def parse(text: str) -> Dict[Tuple[str, str], List[Instruction]]:
    """{(architecture, mangled function): instructions in address order} of cuobjdump -sass text."""
    functions: Dict[Tuple[str, str], List[Instruction]] = {}
    arch, current, pending = None, None, None
    for line in text.splitlines():
        m = _ARCH.search(line)
        if m:
            arch, current = m.group(1), None
            continue
        m = _FUNCTION.search(line)
        if m:
            current = functions.setdefault((arch or "", m.group(1)), [])
            continue
        m = _INSTRUCTION.search(line)
        if m and current is not None:
            pending = m
            continue
        m = _UPPER_WORD.match(line)
        if m and pending is not None and current is not None:
            stall, write, wait = _control(int(m.group(1), 16))
            current.append(Instruction(int(pending.group(1), 16), (pending.group(2) or "").strip(), pending.group(3),
                                       pending.group(4).strip(), stall, write, wait))
            pending = None
    return functions


def branch_target(instruction: Instruction) -> Optional[int]:
    """The address a BRA jumps to, or None for any other instruction."""
    if instruction.base != "BRA":
        return None
    m = _BRANCH_TARGET.match(instruction.operands)
    return int(m.group(1), 16) if m else None


def loops(instructions: List[Instruction]) -> List[Tuple[int, int]]:
    """(first, last) instruction indices of each loop: a branch back to an earlier address closes
    one, from its target to the branch. Self-branches (the BRA-to-itself padding after EXIT) are
    not loops. Innermost loops come first when loops nest (sorted by size)."""
    index = {ins.address: i for i, ins in enumerate(instructions)}
    found = []
    for i, ins in enumerate(instructions):
        target = branch_target(ins)
        if target is not None and target < ins.address and target in index:
            found.append((index[target], i))
    return sorted(found, key=lambda loop: (loop[1] - loop[0], loop[0]))


def global_access_bytes(instruction: Instruction) -> int:
    """Bytes per thread of a global load (LDG) or store (STG); 0 for anything else."""
    if instruction.base not in ("LDG", "STG"):
        return 0
    modifiers = instruction.opcode.split(".")[1:]
    for width, size in (("128", 16), ("64", 8), ("U16", 2), ("S16", 2), ("U8", 1), ("S8", 1)):
        if width in modifiers:
            return size
    return 4


def loads_in_flight(body: Iterable[Instruction]) -> int:
    """Bytes per thread of global loads a warp has issued and not yet waited for, at the most
    loaded wait of one loop iteration. The body is walked twice, so that loads issued for the
    next iteration (software pipelining) count where they are waited for; the second walk is
    measured."""
    body = list(body)
    pending: Dict[int, int] = {}
    most = 0
    for walk in range(2):
        for ins in body:
            waited = [b for b in ins.wait if b in pending]
            if waited:
                if walk == 1:
                    most = max(most, sum(pending.values()))
                for b in waited:
                    del pending[b]
            if ins.base == "LDG" and ins.write_barrier is not None:
                pending[ins.write_barrier] = pending.get(ins.write_barrier, 0) + global_access_bytes(ins)
    return most
