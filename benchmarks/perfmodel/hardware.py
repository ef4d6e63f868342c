"""Published per-GPU and per-architecture rates the static model uses (each with its source).

Per-SM tensor rates are derived from the vendor's dense peak TOPS, SM count and boost clock:
MAC/clk/SM = TOPS / (2 * SMs * clock). Clocks are the boost clocks the peak figures assume; a GPU
held at its power limit (L4 at 72 W especially) runs slower, so predicted times are optimistic by
the clock ratio. Sources:
  [A100-WP]  NVIDIA A100 Tensor Core GPU Architecture whitepaper (2020), Table 1/3 and the A100
             datasheet: 108 SMs, 1410 MHz boost, INT8 624 / INT4 1248 dense TOPS, 2039 GB/s
             (A100 80GB SXM4), 40 MB L2.
  [GA102-WP] NVIDIA Ampere GA102 GPU Architecture whitepaper (2020), Appendix A (RTX A6000:
             84 SMs, 1800 MHz boost, INT8 309.7 / INT4 619.4 dense TOPS, 768 GB/s, 6 MB L2).
  [A10-DS]   NVIDIA A10 datasheet (2021): 72 SMs, 1695 MHz boost, INT8 250 / INT4 500 dense TOPS
             (500/1000 with sparsity), 600 GB/s, 6 MB L2.
  [ADA-WP]   NVIDIA Ada GPU Architecture whitepaper (2022), Appendix A (RTX 4090: 128 SMs,
             2520 MHz boost, INT8 660.6 / INT4 1321.2 dense TOPS, 1008 GB/s, 72 MB L2).
  [L4-DS]    NVIDIA L4 datasheet (2023): 58 SMs, 2040 MHz boost, INT8 485 TOPS with sparsity
             (242.5 dense), 300 GB/s, 48 MB L2. The datasheet gives no INT4 figure; Ada's per-SM
             INT4 rate is twice INT8 [ADA-WP], used here.
  [CUDA-PG]  CUDA C++ Programming Guide, "Arithmetic Instructions" throughput table (results per
             clock per SM: 32-bit integer add/shift/logic/IMAD 64 on cc 8.0/8.6/8.9; FP32 FMA 64 on
             8.0, 128 on 8.6/8.9; type conversions 16) and "Compute Capabilities" table (registers,
             threads, CTAs and shared memory per SM); shared memory: 32 banks x 4 B per clock.
  [MICRO]    Load latency assumptions (order of magnitude, not vendor figures): L2-hit latency
             ~200 cycles on Ampere (Jia et al., "Dissecting the NVidia Turing T4 GPU via
             Microbenchmarking", 2019, measured ~190 on the previous generation; Abdelkhalik et al.,
             "Demystifying the Nvidia Ampere Architecture through Microbenchmarking", 2022) and
             ~280 cycles on Ada (arXiv 2606.22588: L40 L2-hit latency 222-339 cycles, mean ~279).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchRates:
    """Per-SM facts of one SASS architecture (one SM = 4 sub-partitions, one issue per clock each)."""

    sm: str
    #: tensor-pipe cycles one sub-partition needs per MMA opcode (dense), from MAC/clk/SM / 4.
    int8_macs_per_clk_sm: int
    int4_macs_per_clk_sm: int
    #: results per clock per SM [CUDA-PG]
    int_ops_per_clk_sm: int = 64
    fp32_fma_per_clk_sm: int = 64
    conversions_per_clk_sm: int = 16
    #: bytes per clock per SM through the L1/shared-memory data path [CUDA-PG: 32 banks x 4 B]
    l1_bytes_per_clk_sm: int = 128
    #: occupancy limits [CUDA-PG]
    regs_per_sm: int = 65536
    max_threads_per_sm: int = 2048
    max_ctas_per_sm: int = 32
    smem_per_sm: int = 167936
    #: assumed L2-hit latency in cycles [MICRO]
    l2_latency_cycles: int = 200

    def tensor_cycles(self, macs: int, int4: bool) -> float:
        """Sub-partition tensor-pipe cycles of one MMA of `macs` multiply-adds."""
        rate = (self.int4_macs_per_clk_sm if int4 else self.int8_macs_per_clk_sm) / 4
        return macs / rate


ARCHS: dict[str, ArchRates] = {
    # A100: 624e12 / (2 * 108 * 1.41e9) = 2048 int8 MAC/clk/SM [A100-WP]
    "sm_80": ArchRates("sm_80", int8_macs_per_clk_sm=2048, int4_macs_per_clk_sm=4096),
    # GA10x: 309.7e12 / (2 * 84 * 1.8e9) = 1024 [GA102-WP]; 1536 threads, 16 CTAs, 100 KB smem [CUDA-PG]
    "sm_86": ArchRates("sm_86", int8_macs_per_clk_sm=1024, int4_macs_per_clk_sm=2048, fp32_fma_per_clk_sm=128,
                       max_threads_per_sm=1536, max_ctas_per_sm=16, smem_per_sm=102400),
    # AD10x: 660.6e12 / (2 * 128 * 2.52e9) = 1024 [ADA-WP]; limits as sm_86, 24 CTAs [CUDA-PG]
    "sm_89": ArchRates("sm_89", int8_macs_per_clk_sm=1024, int4_macs_per_clk_sm=2048, fp32_fma_per_clk_sm=128,
                       max_threads_per_sm=1536, max_ctas_per_sm=24, smem_per_sm=102400, l2_latency_cycles=280),
}


@dataclass(frozen=True)
class Gpu:
    """One product: its architecture, SM count, boost clock and DRAM bandwidth."""

    key: str
    name: str
    sm: str
    sms: int
    clock_ghz: float
    dram_gb_s: float
    l2_mb: float
    source: str

    @property
    def arch(self) -> ArchRates:
        return ARCHS[self.sm]

    def peak_macs_per_s(self, int4: bool) -> float:
        """Dense tensor MAC/s at the boost clock."""
        rate = self.arch.int4_macs_per_clk_sm if int4 else self.arch.int8_macs_per_clk_sm
        return rate * self.sms * self.clock_ghz * 1e9

    def peak_tops(self, int4: bool) -> float:
        """Dense TOPS (2 ops per MAC), to compare with the vendor's table."""
        return 2 * self.peak_macs_per_s(int4) / 1e12


GPUS: dict[str, Gpu] = {g.key: g for g in (
    Gpu("a100", "A100 80GB SXM4", "sm_80", 108, 1.410, 2039.0, 40.0, "A100-WP"),
    Gpu("a10", "A10", "sm_86", 72, 1.695, 600.0, 6.0, "A10-DS"),
    Gpu("a6000", "RTX A6000", "sm_86", 84, 1.800, 768.0, 6.0, "GA102-WP"),
    Gpu("rtx4090", "GeForce RTX 4090", "sm_89", 128, 2.520, 1008.0, 72.0, "ADA-WP"),
    Gpu("l4", "L4", "sm_89", 58, 2.040, 300.0, 48.0, "L4-DS"),
)}
