# The KVM probe guest (kvm-probe.ts embeds its bytes). A BIOS boot sector that walks
# through what every boot loader and kernel does: real mode, 32-bit protected mode with an
# interrupt and its iret, then 64-bit long mode with paging and an interrupt and its iretq.
# It prints a stage letter on COM1 after each (r, p, l), then the marker, then exits QEMU
# through isa-debug-exit. A real-mode-only probe is not enough: on hosts where KVM
# emulates rather than runs the guest (nested KVM, kvm_pvm), real mode passes and the
# first protected-mode iret stops with "emulation failure", as real guests do.
#
# Rebuild: as --64 -o probe.o kvm-probe.S &&
#          ld -m elf_x86_64 -Ttext 0x7c00 -e 0x7c00 --oformat binary -o probe.bin probe.o
# then copy the bytes before the marker into PROBE_CODE (the marker's address, 0x7d22,
# is fixed by the code; kvm-probe.ts writes the marker there).
        .code16
        .org 0
start:
        cli
        cld
        xor     %ax, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     $0x7c00, %sp
        mov     $0x3f8, %dx
        mov     $'r', %al               # stage: real mode
        out     %al, %dx
        lgdtl   gdt_desc
        mov     %cr0, %eax
        or      $1, %eax
        mov     %eax, %cr0
        ljmpl   $0x08, $(pm32)
        .code32
pm32:
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     $0x7c00, %esp
        lidt    idt32_desc
        int     $0x20                   # an interrupt and its iret in protected mode
        mov     $'p', %al               # stage: protected mode
        out     %al, %dx
        mov     $0x1000, %edi           # page tables at 0x1000: PML4, PDPT, PD
        xor     %eax, %eax
        mov     $3072, %ecx
        rep stosl
        movl    $0x2003, 0x1000
        movl    $0x3003, 0x2000
        movl    $0x83, 0x3000           # one 2 MiB page, identity mapped
        mov     $0x1000, %eax
        mov     %eax, %cr3
        mov     %cr4, %eax
        or      $0x20, %eax             # PAE
        mov     %eax, %cr4
        mov     $0xc0000080, %ecx       # EFER.LME
        rdmsr
        or      $0x100, %eax
        wrmsr
        mov     $0x3f8, %dx             # rdmsr took edx
        mov     %cr0, %eax
        or      $0x80000000, %eax       # paging on: long mode
        mov     %eax, %cr0
        ljmp    $0x18, $(lm64)
        .code64
lm64:
        lidt    idt64_desc
        int     $0x20                   # an interrupt and its iretq in long mode
        mov     $'l', %al               # stage: long mode
        out     %al, %dx
        mov     $(message), %esi
1:      lodsb
        test    %al, %al
        jz      2f
        out     %al, %dx
        jmp     1b
2:      mov     $0x10, %al
        out     %al, $0xf4              # isa-debug-exit: QEMU exits with status 33
3:      hlt
        jmp     3b
        .code32
handler32:
        iret
        .code64
handler64:
        iretq
        .p2align 3
gdt:
        .quad   0
        .quad   0x00cf9a000000ffff      # 0x08 code32
        .quad   0x00cf92000000ffff      # 0x10 data
        .quad   0x00af9a000000ffff      # 0x18 code64
gdt_desc:
        .word   gdt_desc - gdt - 1
        .long   gdt
idt32_gate:
        .word   handler32, 0x08, 0x8e00, 0
idt32_desc:
        .word   0x20 * 8 + 7
        .long   idt32_gate - 0x20 * 8
        .p2align 3
idt64_gate:
        .word   handler64, 0x18, 0x8e00, 0
        .long   0, 0
idt64_desc:
        .word   0x20 * 16 + 15
        .quad   idt64_gate - 0x20 * 16
message:
        .asciz  "lifeboat-probe-ok\r\n"
        .org    510
        .byte   0x55, 0xaa
