#include "engines/emulator/step.h"

namespace cpudiff::emu {

Outcome FaultOutcome(const GuestFault& f) {
  if (f.vector == kVecPF) return Outcome::PageFault(f.code, f.addr);
  if (f.has_code || VectorHasErrorCode(f.vector)) return Outcome::FaultWithCode(f.vector, f.code);
  return Outcome::Fault(f.vector);
}

StepStatus Step(Cpu& c, const DecodedInsn& d, Outcome* outcome) {
  try {
    c.next_rip = c.s.rip + d.length;
    c.stop = Cpu::Stop::kNone;
    Handler h = ResolveHandler(d);
    c.mem.ac_check = c.Flag(kFlagAC);
    const bool single_step = c.Flag(kFlagTF);  // as in Cpu::Run
    h(c, d);
    c.s.rip = c.next_rip;
    if (c.stop != Cpu::Stop::kNone) {
      *outcome = c.stop == Cpu::Stop::kHalt ? Outcome::Halt() : Outcome::Syscall();
      c.stop = Cpu::Stop::kNone;
      return StepStatus::kStopped;
    }
    if (single_step) {
      *outcome = Outcome::Fault(kVecDB);
      return StepStatus::kStopped;
    }
    return c.mem.TakeCodeWritten() ? StepStatus::kCodeWritten : StepStatus::kOk;
  } catch (const GuestFault& f) {
    *outcome = FaultOutcome(f);
  } catch (const GuestStop& st) {
    switch (st.kind) {
      case GuestStop::kHalt:
        *outcome = Outcome::Halt();
        break;
      case GuestStop::kSyscall:
        *outcome = Outcome::Syscall();
        break;
      case GuestStop::kUnsupported:
        *outcome = Outcome::Unsupported(st.reason);
        break;
    }
  }
  return StepStatus::kStopped;
}

}  // namespace cpudiff::emu
