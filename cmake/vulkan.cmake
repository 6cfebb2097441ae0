# vulkan.cmake - the Vulkan compute backend (src/backend/vulkan/), included from the top
# CMakeLists.txt after frugal_obj exists. FRUGAL_VULKAN defaults to ON when the Vulkan
# loader (Debian: libvulkan-dev) and glslc (Debian: glslc) are both found; without them
# the backend is left out and the engine runs on the CPU only.
find_package(Vulkan QUIET)
find_program(GLSLC_EXECUTABLE glslc)
set(_frugal_vk_found OFF)
if(Vulkan_FOUND AND GLSLC_EXECUTABLE)
  set(_frugal_vk_found ON)
endif()
option(FRUGAL_VULKAN "build the Vulkan compute backend (needs the Vulkan loader and glslc)" ${_frugal_vk_found})
if(FRUGAL_VULKAN AND NOT _frugal_vk_found)
  message(FATAL_ERROR "FRUGAL_VULKAN=ON needs the Vulkan loader and glslc (Debian: libvulkan-dev glslc)")
endif()
if(NOT FRUGAL_VULKAN)
  if(_frugal_vk_found)
    message(STATUS "frugal: Vulkan backend OFF (FRUGAL_VULKAN=OFF)")
  else()
    message(STATUS "frugal: Vulkan backend OFF (Vulkan loader or glslc not found; Debian: libvulkan-dev glslc)")
  endif()
  return()
endif()
message(STATUS "frugal: Vulkan backend ON (glslc: ${GLSLC_EXECUTABLE})")

# Each shader variant: NAME SOURCE [DEFINES...]; the matrix kernels are one source each,
# compiled once per weight type.
set(_vk_dir ${CMAKE_SOURCE_DIR}/src/backend/vulkan/shaders)
set(_vk_variants
  "mv_f32|mul_mv.comp|WT_F32" "mv_f16|mul_mv.comp|WT_F16" "mv_q8_0|mul_mv.comp|WT_Q8_0"
  "mv_q4_0|mul_mv.comp|WT_Q4_0" "mv_q4_k|mul_mv.comp|WT_Q4_K" "mv_q6_k|mul_mv.comp|WT_Q6_K"
  "mm_f32|mul_mm.comp|WT_F32" "mm_f16|mul_mm.comp|WT_F16" "mm_q8_0|mul_mm.comp|WT_Q8_0"
  "mm_q4_0|mul_mm.comp|WT_Q4_0" "mm_q4_k|mul_mm.comp|WT_Q4_K" "mm_q6_k|mul_mm.comp|WT_Q6_K"
  "norm|norm.comp|" "rope|rope.comp|" "act|act.comp|" "add|add.comp|" "softmax|softmax.comp|"
  "attn|attn_decode.comp|" "readsum|readsum.comp|" "attn_kv16|attn_kv16.comp|" "kv_store|kv_store.comp|"
  "act_round|act_round.comp|")
file(GLOB _vk_all_sources CONFIGURE_DEPENDS ${_vk_dir}/*.comp ${_vk_dir}/*.glsl)
set(_vk_spv_list "")
set(_vk_spv_files "")
foreach(v IN LISTS _vk_variants)
  string(REPLACE "|" ";" parts "${v}")
  list(GET parts 0 name)
  list(GET parts 1 src)
  list(GET parts 2 def)
  set(out ${CMAKE_BINARY_DIR}/spv/${name}.spv)
  set(defs "")
  if(def)
    set(defs "-D${def}=1")
  endif()
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/spv
    COMMAND ${GLSLC_EXECUTABLE} -fshader-stage=compute --target-env=vulkan1.1 -O -Werror
            -I${_vk_dir} ${defs} ${_vk_dir}/${src} -o ${out}
    DEPENDS ${_vk_all_sources} COMMENT "glslc ${name}" VERBATIM)
  list(APPEND _vk_spv_list "${name}=${out}")
  list(APPEND _vk_spv_files ${out})
endforeach()
set(_vk_gen ${CMAKE_BINARY_DIR}/generated/vk_shaders_spv.c)
add_custom_command(OUTPUT ${_vk_gen}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/generated
  COMMAND ${CMAKE_COMMAND} "-DSPV=${_vk_spv_list}" -DOUT=${_vk_gen} -P ${CMAKE_SOURCE_DIR}/cmake/embed_spirv.cmake
  DEPENDS ${_vk_spv_files} ${CMAKE_SOURCE_DIR}/cmake/embed_spirv.cmake COMMENT "embedding SPIR-V" VERBATIM)

file(GLOB _vk_c_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/backend/vulkan/*.c)
target_sources(frugal_obj PRIVATE ${_vk_c_sources} ${_vk_gen})
target_compile_definitions(frugal_obj PUBLIC FRUGAL_HAVE_VULKAN=1)
target_include_directories(frugal_obj PRIVATE ${Vulkan_INCLUDE_DIRS})
# the static library's users link the loader too (frugalConfig.cmake finds it, frugal.pc
# lists it); the shared one carries it itself. The define is for the build tree's tests.
target_link_libraries(frugal_static PUBLIC Vulkan::Vulkan)
target_compile_definitions(frugal_static PUBLIC $<BUILD_INTERFACE:FRUGAL_HAVE_VULKAN=1>)
target_link_libraries(frugal_shared PRIVATE Vulkan::Vulkan)
set(FRUGAL_PC_LIBS_PRIVATE "-lvulkan")
