/* vk_shaders.h - the compute shaders embedded in the library as SPIR-V.
 *
 * The table is generated at build time (cmake/embed_spirv.cmake) from the GLSL in
 * shaders/, compiled by glslc; a variant's name is the one cmake/vulkan.cmake gives it
 * ("mv_q4_0", "norm", ...). */
#ifndef FRUGAL_VK_SHADERS_H
#define FRUGAL_VK_SHADERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct fr_vk_shader {
    const char *name;
    const uint32_t *code;
    size_t size; /* bytes */
} fr_vk_shader;

extern const fr_vk_shader fr_vk_shaders[];
extern const int fr_vk_n_shaders;

#endif
